import Foundation
import Testing

@testable import Tensor

/// Packed weights: the kernel widens bf16 in registers, so it must equal the float32 kernel on the widened weights
/// bit for bit, and sgemm within rounding, on shapes that hit every tail (rows, outputs and depth not multiples of the
/// tiles, panels or groups).
@Suite struct WeightsKernelTests {
    /// bf16 bits of random values, and their exact float32 widening.
    static func bf16(_ count: Int, seed: UInt64) -> (bits: [UInt16], floats: [Float]) {
        let bits = RowInvariantKernelTests.random(count, seed: seed).map { UInt16($0.bitPattern >> 16) }
        return (bits, bits.map { Float(bitPattern: UInt32($0) << 16) })
    }

    @Test(arguments: [
        (1, 16, 4), (1, 4096, 37), (1, 70, 27), (3, 17, 5), (4, 64, 8), (7, 33, 13), (16, 100, 31), (9, 1, 3),
        (17, 255, 6), (1, 40, 200), (13, 9, 130),
    ])
    func bf16WeightsGiveTheFloat32ResultBitForBitAndMatchSgemm(rows: Int, inputs: Int, outputs: Int) {
        let x = Matrix(rows: rows, columns: inputs, values: RowInvariantKernelTests.random(rows * inputs, seed: 11))
        let (bits, floats) = Self.bf16(outputs * inputs, seed: 12)
        let half = Weights(outputs: outputs, inputs: inputs, bfloat16: bits)
        let full = Weights(outputs: outputs, inputs: inputs, values: floats)
        #expect(half.bytesPerWeight == 2 && full.bytesPerWeight == 4 && half.floats == floats)
        #expect(half.residentBytes == Weights.paddedOutputs(outputs) * inputs * 2)
        let ours = RowInvariant.linear(x, weights: half)
        #expect(ours == RowInvariant.linear(x, weights: full))
        var blas = [Float](repeating: 0, count: rows * outputs)
        BLAS.linear(x.storage, rows: rows, inputs: inputs, weight: floats, outputs: outputs, into: &blas)
        for (a, b) in zip(ours.storage, blas) { #expect(abs(a - b) <= 1e-5 * Float(inputs)) }
    }

    @Test func packingKeepsEveryRowAndPadsWithZeros() {
        let values = RowInvariantKernelTests.random(70 * 5, seed: 15)
        let weights = Weights(outputs: 70, inputs: 5, values: values)
        #expect(weights.floats == values)
        #expect(weights.row(69) == Array(values[(69 * 5)...]))
        #expect(Weights.paddedOutputs(70) == 128 && weights.residentBytes == 128 * 5 * 4)
        #expect(weights == Weights(outputs: 70, inputs: 5, values: values))
        #expect(weights != Weights(outputs: 70, inputs: 5, values: values.map { $0 + 1 }))
    }

    @Test func biasAndAccumulation() {
        let (bits, _) = Self.bf16(6 * 20, seed: 13)
        let weights = Weights(outputs: 6, inputs: 20, bfloat16: bits)
        let x = Matrix(rows: 2, columns: 20, values: RowInvariantKernelTests.random(40, seed: 14))
        let bias: [Float] = [1, 2, 3, 4, 5, 6]
        let plain = RowInvariant.linear(x, weights: weights)
        let biased = RowInvariant.linear(x, weights: weights, bias: bias)
        for r in 0..<2 {
            for c in 0..<6 { #expect(biased.storage[r * 6 + c] == plain.storage[r * 6 + c] + bias[c]) }
        }
        var doubled = plain
        RowInvariant.linear(x, weights: weights, into: &doubled, accumulate: true)
        for (a, b) in zip(doubled.storage, plain.storage) { #expect(a == b + b) }
    }
}

/// 8-bit weights: Q8_0's rounding, and products within its error of the float32 ones.
@Suite struct Q8WeightsTests {
    @Test func quantizationFollowsQ8_0() {
        let row: [Float] = (0..<40).map { Float($0) - 20 }  // a whole block and a partial one
        let (values, scales) = Q8.quantize(row[...])
        #expect(values.count == 40 && scales.count == 2)
        // Block 0: max |x| = 20, d = 20/127, value = round(x · 127/20); block 1: max |x| = 19.
        #expect(Float(Float16(bitPattern: scales[0])) == Float(Float16(Float(20) / 127)))
        #expect(values[0] == -127 && values[10] == Int8((Float(-10) * (127 / Float(20))).rounded()))
        #expect(values[39] == 127 && values[32] == Int8((Float(12) * (127 / Float(19))).rounded()))
        let zeros = Q8.quantize([Float](repeating: 0, count: 32)[...])
        #expect(zeros.values.allSatisfy { $0 == 0 } && zeros.scales == [0])
    }

    /// The activations' rounding is roundf's, ties away from zero: with max |x| = 127 the scale is 1, so each value
    /// is its own rounding; the block sums and the float32 scales come with them.
    @Test func activationsRoundTiesAwayFromZero() {
        let row: [Float] = [127, 0.5, 1.5, -0.5, -2.5, 2.4999998, -126.5, 0, 3] + [Float](repeating: 0, count: 23)
        let second: [Float] = [-254, 1, 0.99] + [Float](repeating: 0, count: 29)  // scale 2
        let activations = Q8.Activations(Matrix(rows: 1, columns: 64, values: row + second))
        #expect(Array(activations.values[0..<9]) == [127, 1, 2, -1, -3, 2, -127, 0, 3])
        #expect(Array(activations.values[32..<35]) == [-127, 1, 0] && activations.scales == [1, 2])
        #expect(activations.sums == [127 + 1 + 2 - 1 - 3 + 2 - 127 + 3, -126])
    }

    @Test func aValueOfMinus128IsRefused() {
        var values = [Int8](repeating: 1, count: 2 * 40)
        values[40 + 7] = -128
        let scales = [UInt16](repeating: Float16(0.5).bitPattern, count: 2 * 2)
        #expect(throws: Q8.ValueOutOfRange.self) {
            try values.withUnsafeBufferPointer { v in
                try scales.withUnsafeBufferPointer { s in
                    try Weights(
                        outputs: 2,
                        inputs: 40,
                        q8Row: { v.baseAddress! + $0 * 40 },
                        scales: { s.baseAddress! + $0 * 2 }
                    )
                }
            }
        }
    }

    /// A NaN or infinity among a row's activations reaches that row's outputs, as it would in float32, and no other
    /// row's.
    @Test func aNonFiniteActivationReachesItsRow() {
        let (inputs, outputs) = (70, 20)
        let q8 = Weights(outputs: outputs, inputs: inputs, quantizing: RowInvariantKernelTests.random(1400, seed: 43))
        var values = RowInvariantKernelTests.random(3 * inputs, seed: 44)
        values[5] = .nan
        values[inputs + 40] = .infinity
        for path in KernelPath.available {
            let y = RowInvariant.linear(Matrix(rows: 3, columns: inputs, values: values), weights: q8, path: path)
            #expect(y.storage[0..<(2 * outputs)].allSatisfy { $0.isNaN }, "\(path)")
            #expect(y.storage[(2 * outputs)...].allSatisfy { $0.isFinite }, "\(path)")
        }
    }

    @Test(arguments: [(1, 64, 40), (3, 100, 70), (20, 300, 64)])
    func productsAreWithinTheQuantizationError(rows: Int, inputs: Int, outputs: Int) {
        let x = Matrix(rows: rows, columns: inputs, values: RowInvariantKernelTests.random(rows * inputs, seed: 41))
        let w = RowInvariantKernelTests.random(outputs * inputs, seed: 42)
        let q8 = Weights(outputs: outputs, inputs: inputs, quantizing: w)
        #expect(q8.residentBytes == Weights.paddedOutputs(outputs) / 16 * Q8.blocks(inputs) * 544)
        let exact = RowInvariant.linear(x, weights: Weights(outputs: outputs, inputs: inputs, values: w))
        let quantized = RowInvariant.linear(x, weights: q8)
        // Each weight is off by at most half its step d = max |w| / 127 ≤ 1/127 here, plus 127 times the f16 rounding
        // of d (2^-11 of it): 0.57 d in all. Each activation is off by at most half its block's step max |x| / 127,
        // against a weight within 1.001 of ±1. So an output is off by at most Σ|x| · 0.57 / 127 plus, per block,
        // its count · max |x| · 0.5005 / 127, plus float rounding.
        for i in 0..<rows {
            let row = x.storage[(i * inputs)..<((i + 1) * inputs)]
            let activations = stride(from: 0, to: inputs, by: 32).reduce(Float(0)) { total, first in
                let block = row.dropFirst(first).prefix(32)
                return total + Float(block.count) * block.map(abs).max()! * 0.5005 / 127
            }
            let bound = row.reduce(0) { $0 + abs($1) } * 0.57 / 127 + activations + 1e-4
            for j in 0..<outputs {
                #expect(abs(quantized.storage[i * outputs + j] - exact.storage[i * outputs + j]) <= bound)
            }
        }
    }
}
