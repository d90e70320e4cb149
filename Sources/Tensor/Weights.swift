internal import CKernels

/// A weight matrix `[outputs, inputs]` as it stays in memory: float32, or bfloat16 as the checkpoint stores it.
///
/// bf16 weights are widened in registers by the kernels, never in memory, so a decode step reads half the bytes, and
/// every product is bit-identical to the float32 widening (a bf16 value is exactly the high half of a float32).
public struct Weights: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        /// Raw bfloat16 bits, row by row. Given in order; held in the kernels' paired layout (`CKernels.h`).
        case bfloat16([UInt16])
    }

    public let outputs: Int
    public let inputs: Int
    public let storage: Storage

    /// bf16 bits are given in order and rearranged here into the kernels' paired layout.
    public init(outputs: Int, inputs: Int, storage: Storage) {
        switch storage {
        case .float32: self.init(outputs: outputs, inputs: inputs, laidOut: storage)
        case .bfloat16(let bits):
            self.init(outputs: outputs, inputs: inputs, laidOut: .bfloat16(Self.pairing(bits, columns: inputs)))
        }
    }

    private init(outputs: Int, inputs: Int, laidOut storage: Storage) {
        let count =
            switch storage {
            case .float32(let values): values.count
            case .bfloat16(let bits): bits.count
            }
        precondition(count == outputs * inputs, "\(count) weights for [\(outputs), \(inputs)]")
        self.outputs = outputs
        self.inputs = inputs
        self.storage = storage
    }

    public init(outputs: Int, inputs: Int, values: [Float]) {
        self.init(outputs: outputs, inputs: inputs, laidOut: .float32(values))
    }

    /// Each row's whole blocks of 32 values rearranged so that 32-bit word l holds value l (low half) and value
    /// 16 + l (high half): the kernel widens a word to two values with a shift and a mask instead of a shuffle.
    /// `pairing(…, inverse: true)` undoes it.
    static func pairing(_ bits: [UInt16], columns k: Int, inverse: Bool = false) -> [UInt16] {
        var out = bits
        let k32 = k & ~31
        guard k32 > 0 else { return out }
        for base in stride(from: 0, to: bits.count, by: k) {
            for block in stride(from: base, to: base + k32, by: 32) {
                for l in 0..<16 {
                    if inverse {
                        out[block + l] = bits[block + 2 * l]
                        out[block + 16 + l] = bits[block + 2 * l + 1]
                    } else {
                        out[block + 2 * l] = bits[block + l]
                        out[block + 2 * l + 1] = bits[block + 16 + l]
                    }
                }
            }
        }
        return out
    }

    /// Bytes per weight in memory.
    public var bytesPerWeight: Int {
        switch storage {
        case .float32: 4
        case .bfloat16: 2
        }
    }

    /// The weights stacked as rows: `[a; b; …]` (all of one storage type, equal input widths).
    public static func stacking(_ parts: [Weights]) -> Weights {
        precondition(Set(parts.map(\.inputs)).count == 1, "stacked weights need equal input widths")
        let outputs = parts.reduce(0) { $0 + $1.outputs }
        switch parts[0].storage {
        case .float32:
            let values = parts.flatMap { part -> [Float] in
                guard case .float32(let v) = part.storage else { preconditionFailure("mixed weight storage") }
                return v
            }
            return Weights(outputs: outputs, inputs: parts[0].inputs, laidOut: .float32(values))
        case .bfloat16:
            let bits = parts.flatMap { part -> [UInt16] in
                guard case .bfloat16(let b) = part.storage else { preconditionFailure("mixed weight storage") }
                return b
            }
            return Weights(outputs: outputs, inputs: parts[0].inputs, laidOut: .bfloat16(bits))
        }
    }

    /// The float32 values (a widened copy for bf16).
    public var floats: [Float] {
        switch storage {
        case .float32(let values): values
        case .bfloat16(let bits):
            Self.pairing(bits, columns: inputs, inverse: true).map { Float(bitPattern: UInt32($0) << 16) }
        }
    }
}

extension RowInvariant {
    /// `y = x · wᵀ (+ bias)`, or `y += x · wᵀ` with `accumulate`, for weights of either storage.
    public static func linear(
        _ x: Matrix,
        weights w: Weights,
        bias: [Float]? = nil,
        into y: inout Matrix,
        accumulate: Bool = false
    ) {
        precondition(
            w.inputs == x.columns && w.outputs == y.columns,
            "weights [\(w.outputs), \(w.inputs)] for \(x.columns)→\(y.columns)"
        )
        precondition(x.rows == y.rows, "row counts \(x.rows) and \(y.rows) differ")
        let (m, k, n) = (x.rows, x.columns, y.columns)
        guard m > 0, n > 0 else { return }
        let flag: Int32 = accumulate ? 1 : 0
        x.storage.withUnsafeBufferPointer { xs in
            y.storage.withUnsafeMutableBufferPointer { ys in
                let (xp, yp) = (Pointer(xs.baseAddress!), MutablePointer(ys.baseAddress!))
                switch w.storage {
                case .float32(let values):
                    values.withUnsafeBufferPointer { ws in
                        let wp = Pointer(ws.baseAddress!)
                        ComputeThreads.split(columns: n, work: m * n * k) { columns in
                            ck_dot_rows(
                                xp.value,
                                k,
                                m,
                                wp.value + columns.lowerBound * k,
                                k,
                                columns.count,
                                k,
                                yp.value + columns.lowerBound,
                                n,
                                1,
                                flag
                            )
                        }
                    }
                case .bfloat16(let bits):
                    bits.withUnsafeBufferPointer { ws in
                        let wp = Pointer(ws.baseAddress!)
                        ComputeThreads.split(columns: n, work: m * n * k) { columns in
                            ck_dot_rows_bf16(
                                xp.value,
                                k,
                                m,
                                wp.value + columns.lowerBound * k,
                                k,
                                columns.count,
                                k,
                                yp.value + columns.lowerBound,
                                n,
                                1,
                                flag
                            )
                        }
                    }
                }
                guard let bias else { return }
                for r in 0..<m {
                    for c in 0..<n { ys[r * n + c] += bias[c] }
                }
            }
        }
    }

    /// `x · wᵀ (+ bias)` as a new matrix.
    public static func linear(_ x: Matrix, weights: Weights, bias: [Float]? = nil) -> Matrix {
        var y = Matrix(rows: x.rows, columns: weights.outputs)
        linear(x, weights: weights, bias: bias, into: &y)
        return y
    }
}

/// Pointers handed to the kernel threads for the duration of one product (each thread writes its own columns).
struct Pointer<T>: @unchecked Sendable {
    let value: UnsafePointer<T>
    init(_ value: UnsafePointer<T>) { self.value = value }
}

struct MutablePointer<T>: @unchecked Sendable {
    let value: UnsafeMutablePointer<T>
    init(_ value: UnsafeMutablePointer<T>) { self.value = value }
}
