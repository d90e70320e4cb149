internal import CKernels
import Foundation

/// A weight matrix `[outputs, inputs]` as the kernels read it: packed in panels of 16 outputs (`CKernels.h`), float32,
/// bfloat16 or float16 as the checkpoint stores it, or 8-bit.
///
/// bf16 and f16 weights are widened in registers by the kernels, never in memory, so a decode step reads half the
/// bytes, and every product is bit-identical to the float32 widening (both widen exactly). The
/// packed copy is the only one a process keeps: loaders pack straight from the memory-mapped checkpoint and release
/// the mapped pages behind them (`ModelDirectory.loadWeights`).
public struct Weights: Sendable, Equatable {
    public enum Element: Sendable, Equatable {
        case float32
        case bfloat16
        case float16
        /// 8-bit values in blocks of 32 inputs with an f16 scale each (`Q8`).
        case q8

        /// Bytes of a source row's element (q8: its int8 values).
        public var bytes: Int {
            switch self {
            case .float32: 4
            case .bfloat16, .float16: 2
            case .q8: 1
            }
        }

        /// The element code of `ck_linear` (q8 weights have their own product, `ck_linear_q8`).
        var kernelCode: Int32 {
            switch self {
            case .bfloat16: Int32(CK_WEIGHTS_BF16)
            case .float16: Int32(CK_WEIGHTS_F16)
            case .float32, .q8: Int32(CK_WEIGHTS_F32)
            }
        }
    }

    public let outputs: Int
    public let inputs: Int
    public let element: Element
    let panels: PanelStorage

    /// Outputs rounded up to the packing's group (the padding holds zeros and is never stored to an output).
    public static func paddedOutputs(_ outputs: Int) -> Int {
        (outputs + Int(CK_GROUP) - 1) / Int(CK_GROUP) * Int(CK_GROUP)
    }

    /// Bytes a matrix of this shape holds in memory once packed.
    public static func residentBytes(outputs: Int, inputs: Int, element: Element) -> Int {
        paddedOutputs(outputs) / Int(CK_PANEL) * panelBytes(inputs: inputs, element: element)
    }

    /// Bytes of one panel of 16 outputs.
    static func panelBytes(inputs: Int, element: Element) -> Int {
        switch element {
        case .float32, .bfloat16, .float16: Int(CK_PANEL) * inputs * element.bytes
        case .q8: Q8.blocks(inputs) * Q8.blockBytes
        }
    }

    /// Packs a matrix whose row `j` (of `inputs` elements of `element`'s type) `row(j)` points at. Rows are read in
    /// order, and `packed(rows)` hears of each block of rows done (a loader lets their source go).
    public init(
        outputs: Int,
        inputs: Int,
        element: Element,
        row: (Int) -> UnsafeRawPointer,
        packed: ((Range<Int>) -> Void)? = nil
    ) {
        precondition(outputs >= 0 && inputs >= 0, "negative weight shape [\(outputs), \(inputs)]")
        precondition(element != .q8, "q8 weights are packed from values and scales")
        self.outputs = outputs
        self.inputs = inputs
        self.element = element
        panels = PanelStorage(bytes: Self.residentBytes(outputs: outputs, inputs: inputs, element: element))
        Self.pack(outputs, into: panels, panelBytes: Self.panelBytes(inputs: inputs, element: element), packed) {
            ck_pack_row(row($0), inputs, element.bytes, $1, $2)
        }
    }

    /// Packs rows 0..<outputs in order, `packRow(j, panel, lane)` each, and tells `packed` of every 256 done.
    private static func pack(
        _ outputs: Int,
        into panels: PanelStorage,
        panelBytes: Int,
        _ packed: ((Range<Int>) -> Void)?,
        packRow: (Int, UnsafeMutableRawPointer, Int) -> Void
    ) {
        for first in stride(from: 0, to: outputs, by: 256) {
            let rows = first..<min(outputs, first + 256)
            for j in rows { packRow(j, panels.base + (j / Int(CK_PANEL)) * panelBytes, j % Int(CK_PANEL)) }
            packed?(rows)
        }
    }

    /// 8-bit weights: row `j`'s int8 values at `values(j)` and its f16 scale bits (one per block of 32) at
    /// `scales(j)`; `packed` as above. Throws `Q8.ValueOutOfRange` naming the first row holding -128, a value Q8_0
    /// never writes and the kernels do not take.
    public init(
        outputs: Int,
        inputs: Int,
        q8Row values: (Int) -> UnsafePointer<Int8>,
        scales: (Int) -> UnsafePointer<UInt16>,
        packed: ((Range<Int>) -> Void)? = nil
    ) throws {
        self.outputs = outputs
        self.inputs = inputs
        element = .q8
        panels = PanelStorage(bytes: Self.residentBytes(outputs: outputs, inputs: inputs, element: .q8))
        var outOfRange: Int?
        Self.pack(outputs, into: panels, panelBytes: Self.panelBytes(inputs: inputs, element: .q8), packed) {
            if ck_pack_row_q8(values($0), scales($0), inputs, $1, $2) != 0, outOfRange == nil { outOfRange = $0 }
        }
        if let outOfRange { throw Q8.ValueOutOfRange(row: outOfRange) }
    }

    /// float32 values quantized to 8 bits (`Q8.quantize`), row by row.
    public init(outputs: Int, inputs: Int, quantizing values: [Float]) {
        precondition(
            values.count == outputs * inputs && inputs > 0,
            "\(values.count) weights for [\(outputs), \(inputs)]"
        )
        let rows = (0..<outputs).map { Q8.quantize(values[($0 * inputs)..<(($0 + 1) * inputs)]) }
        let (quantized, scales, blocks) = (rows.flatMap(\.values), rows.flatMap(\.scales), Q8.blocks(inputs))
        // Q8.quantize writes values within ±127, so packing them cannot throw.
        self = try! quantized.withUnsafeBufferPointer { v in
            try scales.withUnsafeBufferPointer { s in
                try Weights(
                    outputs: outputs,
                    inputs: inputs,
                    q8Row: { v.baseAddress! + $0 * inputs },
                    scales: { s.baseAddress! + $0 * blocks }
                )
            }
        }
    }

    /// float32 values, row by row.
    public init(outputs: Int, inputs: Int, values: [Float]) {
        precondition(values.count == outputs * inputs, "\(values.count) weights for [\(outputs), \(inputs)]")
        self = values.withUnsafeBytes { raw in
            Weights(outputs: outputs, inputs: inputs, element: .float32, row: { raw.baseAddress! + $0 * inputs * 4 })
        }
    }

    /// Raw bfloat16 bits, row by row.
    public init(outputs: Int, inputs: Int, bfloat16 bits: [UInt16]) {
        precondition(bits.count == outputs * inputs, "\(bits.count) weights for [\(outputs), \(inputs)]")
        self = bits.withUnsafeBytes { raw in
            Weights(outputs: outputs, inputs: inputs, element: .bfloat16, row: { raw.baseAddress! + $0 * inputs * 2 })
        }
    }

    /// Raw float16 bits, row by row.
    public init(outputs: Int, inputs: Int, float16 bits: [UInt16]) {
        precondition(bits.count == outputs * inputs, "\(bits.count) weights for [\(outputs), \(inputs)]")
        self = bits.withUnsafeBytes { raw in
            Weights(outputs: outputs, inputs: inputs, element: .float16, row: { raw.baseAddress! + $0 * inputs * 2 })
        }
    }

    /// Bytes per weight in memory.
    public var bytesPerWeight: Int { element.bytes }

    /// Bytes held in memory, padding included.
    public var residentBytes: Int { panels.bytes }

    /// Row `j`'s float32 values (widened from bf16 or f16; q8 dequantized, float(value) · float(scale), for inspection: the
    /// kernels multiply the values as integers and scale each block once, `CKernels.h`).
    public func row(_ j: Int) -> [Float] {
        precondition(j >= 0 && j < outputs, "row \(j) of \(outputs)")
        let panel = panels.base + (j / Int(CK_PANEL)) * Self.panelBytes(inputs: inputs, element: element)
        switch element {
        case .q8:
            var values = [Int8](repeating: 0, count: inputs)
            var scales = [UInt16](repeating: 0, count: Q8.blocks(inputs))
            if inputs > 0 { ck_unpack_row_q8(panel, inputs, j % Int(CK_PANEL), &values, &scales) }
            return values.enumerated().map { p, value in Float(value) * Float(Float16(bitPattern: scales[p / 32])) }
        case .float32:
            return [Float](unsafeUninitializedCapacity: inputs) { buffer, count in
                if inputs > 0 { ck_unpack_row(panel, inputs, 4, j % Int(CK_PANEL), buffer.baseAddress!) }
                count = inputs
            }
        case .bfloat16, .float16:
            var bits = [UInt16](repeating: 0, count: inputs)
            if inputs > 0 { ck_unpack_row(panel, inputs, 2, j % Int(CK_PANEL), &bits) }
            return element == .float16
                ? bits.map { Float(Float16(bitPattern: $0)) } : bits.map { Float(bitPattern: UInt32($0) << 16) }
        }
    }

    /// All float32 values, row by row (a widened copy for bf16).
    public var floats: [Float] { (0..<outputs).flatMap(row) }

    public static func == (lhs: Weights, rhs: Weights) -> Bool {
        lhs.outputs == rhs.outputs && lhs.inputs == rhs.inputs && lhs.element == rhs.element
            && memcmp(lhs.panels.base, rhs.panels.base, lhs.panels.bytes) == 0
    }
}

/// The packed bytes: one 64-byte-aligned allocation, zero-filled (the padding outputs), freed with the last reference.
final class PanelStorage: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
        // calloc's pages of a large block come from the kernel already zero, untouched until packing writes them.
        let raw = calloc(max(bytes, 1) + 64, 1)!
        let aligned = (Int(bitPattern: raw) + 64) & ~63
        // The byte before the aligned base records the offset back to what calloc gave.
        let offset = aligned - Int(bitPattern: raw)
        raw.storeBytes(of: UInt8(offset), toByteOffset: offset - 1, as: UInt8.self)
        base = raw + offset
    }

    deinit { free(base - Int(base.load(fromByteOffset: -1, as: UInt8.self))) }
}

extension RowInvariant {
    /// `y = x · wᵀ (+ bias)`, or `y += x · wᵀ` with `accumulate`, on `path`.
    public static func linear(
        _ x: Matrix,
        weights w: Weights,
        bias: [Float]? = nil,
        into y: inout Matrix,
        accumulate: Bool = false,
        path: KernelPath = .current
    ) {
        precondition(
            w.inputs == x.columns && w.outputs == y.columns,
            "weights [\(w.outputs), \(w.inputs)] for \(x.columns)→\(y.columns)"
        )
        precondition(x.rows == y.rows, "row counts \(x.rows) and \(y.rows) differ")
        let (m, n) = (x.rows, y.columns)
        guard m > 0, n > 0 else { return }
        let flag: Int32 = accumulate ? 1 : 0
        if w.element == .q8 {
            linearQ8(x, weights: w, into: &y, accumulate: flag, path: path)
        } else {
            let (k, element) = (x.columns, w.element.kernelCode)
            x.storage.withUnsafeBufferPointer { xs in
                let xp = Pointer(xs.baseAddress!)
                splitColumns(of: w, into: &y, work: m * n * k) { count, panels, out in
                    ck_linear(Int32(path.rawValue), element, xp.value, k, m, panels, k, count, out, n, 1, flag)
                }
            }
        }
        guard let bias else { return }
        y.storage.withUnsafeMutableBufferPointer { ys in
            for r in 0..<m {
                for c in 0..<n { ys[r * n + c] += bias[c] }
            }
        }
    }

    /// 8-bit weights: the rows are quantized once (`Q8.Activations`), then the threads share them.
    private static func linearQ8(
        _ x: Matrix,
        weights w: Weights,
        into y: inout Matrix,
        accumulate flag: Int32,
        path: KernelPath
    ) {
        let (m, k, n) = (x.rows, x.columns, y.columns)
        let activations = Q8.Activations(x)
        activations.values.withUnsafeBufferPointer { values in
            activations.scales.withUnsafeBufferPointer { scales in
                activations.sums.withUnsafeBufferPointer { sums in
                    let (v, d, s) = (
                        Pointer(values.baseAddress!), Pointer(scales.baseAddress!), Pointer(sums.baseAddress!)
                    )
                    // A byte multiply-add costs about a quarter of a float one, so the hand-off pays later.
                    splitColumns(of: w, into: &y, work: m * n * k / 4) { count, panels, out in
                        ck_linear_q8(
                            Int32(path.rawValue),
                            v.value,
                            d.value,
                            s.value,
                            m,
                            panels,
                            k,
                            count,
                            out,
                            n,
                            1,
                            flag
                        )
                    }
                }
            }
        }
    }

    /// Splits a product's output columns over the compute threads: `product(count, panels, output)` computes `count`
    /// columns from the packed panels at `panels` into row 0's column at `output` (rows `y.columns` apart).
    private static func splitColumns(
        of w: Weights,
        into y: inout Matrix,
        work: Int,
        _ product: @Sendable (Int, UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void
    ) {
        let (panelBytes, outputs) = (Weights.panelBytes(inputs: w.inputs, element: w.element), y.columns)
        let weights = RawPointer(UnsafeRawPointer(w.panels.base))
        y.storage.withUnsafeMutableBufferPointer { ys in
            let yp = MutablePointer(ys.baseAddress!)
            ComputeThreads.split(columns: outputs, granule: Int(CK_GROUP), work: work) { columns in
                product(
                    columns.count,
                    weights.value + columns.lowerBound / Int(CK_PANEL) * panelBytes,
                    yp.value + columns.lowerBound
                )
            }
        }
        withExtendedLifetime(w.panels) {}
    }

    /// `x · wᵀ (+ bias)` as a new matrix.
    public static func linear(
        _ x: Matrix,
        weights: Weights,
        bias: [Float]? = nil,
        path: KernelPath = .current
    ) -> Matrix {
        var y = Matrix(rows: x.rows, columns: weights.outputs)
        linear(x, weights: weights, bias: bias, into: &y, path: path)
        return y
    }
}

/// Pointers handed to the kernel threads for the duration of one product (each thread writes its own columns).
struct Pointer<T>: @unchecked Sendable {
    let value: UnsafePointer<T>
    init(_ value: UnsafePointer<T>) { self.value = value }
}

struct RawPointer: @unchecked Sendable {
    let value: UnsafeRawPointer
    init(_ value: UnsafeRawPointer) { self.value = value }
}

struct MutablePointer<T>: @unchecked Sendable {
    let value: UnsafeMutablePointer<T>
    init(_ value: UnsafeMutablePointer<T>) { self.value = value }
}
