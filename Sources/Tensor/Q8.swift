internal import CKernels

/// 8-bit weights after llama.cpp's Q8_0: each row's inputs in blocks of 32, each block stored as 32 int8 values and
/// one scale d (float16) with weight ≈ value · d. The activations are quantized the same way, a row at a time, so a
/// block's product is an exact integer dot product, scaled once (`ck_linear_q8` in `CKernels.h`).
public enum Q8 {
    public static let block = 32
    /// Bytes of one block of a packed panel (`CK_Q8_BLOCK_BYTES`): 16 outputs' f16 scales, then 32 · 16 values.
    public static let blockBytes = 16 * 2 + 32 * 16

    /// A weight value of -128: Q8_0 writes values within ±127, and the kernels rely on it.
    public struct ValueOutOfRange: Error, CustomStringConvertible {
        public let row: Int
        public var description: String { "row \(row) holds the int8 value -128; Q8_0 values lie in -127...127" }
    }

    /// Rows of activations quantized for the 8-bit product (`ck_q8_quantize_rows`): per row and block of 32, the
    /// values (the last block padded with zeros), the float32 scale and the values' sum.
    struct Activations {
        let values: [Int8]
        let scales: [Float]
        let sums: [Int32]

        init(_ x: Matrix) {
            let (rows, blocks) = (x.rows, Q8.blocks(x.columns))
            var values = [Int8](repeating: 0, count: rows * blocks * Q8.block)
            var scales = [Float](repeating: 0, count: rows * blocks)
            var sums = [Int32](repeating: 0, count: rows * blocks)
            x.storage.withUnsafeBufferPointer { a in
                ck_q8_quantize_rows(a.baseAddress!, x.columns, rows, x.columns, &values, &scales, &sums)
            }
            (self.values, self.scales, self.sums) = (values, scales, sums)
        }
    }

    /// Blocks of a row of `inputs` values (the last may be partial).
    public static func blocks(_ inputs: Int) -> Int { (inputs + block - 1) / block }

    /// A row's values and scales (f16 bits), as Q8_0 rounds them: d = max|x| / 127 per block, value = round(x / d)
    /// (to nearest, ties away from zero), with the f16 of d stored.
    public static func quantize(_ row: ArraySlice<Float>) -> (values: [Int8], scales: [UInt16]) {
        var values = [Int8](repeating: 0, count: row.count)
        var scales = [UInt16](repeating: 0, count: blocks(row.count))
        let start = row.startIndex
        for b in 0..<scales.count {
            let range = (start + b * block)..<min(row.endIndex, start + (b + 1) * block)
            let largest = row[range].reduce(0) { max($0, abs($1)) }
            let d = largest / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            for i in range { values[i - start] = Int8((row[i] * inverse).rounded(.toNearestOrAwayFromZero)) }
            scales[b] = Float16(d).bitPattern
        }
        return (values, scales)
    }
}
