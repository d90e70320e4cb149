/// 8-bit weights after llama.cpp's Q8_0: each row's inputs in blocks of 32, each block stored as 32 int8 values and
/// one scale d (float16) with weight ≈ value · d. The kernels sum a block's activations times its values, then add
/// that sum times d to the output (`CKernels.h`).
public enum Q8 {
    public static let block = 32
    /// Bytes of one block of a packed panel (`CK_Q8_BLOCK_BYTES`): 16 outputs' f16 scales, then [32][16] values.
    public static let blockBytes = 16 * 2 + 32 * 16

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
