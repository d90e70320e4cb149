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
