import Foundation
import Testing

@testable import Tensor

/// Every instruction-set path this CPU can run gives the same bits, and those bits are the arithmetic CKernels.h
/// documents, written out here independently in Swift: `addingProduct` is IEEE fusedMultiplyAdd.
@Suite struct KernelPathTests {
    static let paths = KernelPath.available

    /// One output of `ck_linear`: a chain of fused multiply-adds over the inputs in order, times alpha, plus c.
    static func chain(_ x: ArraySlice<Float>, _ w: [Float], alpha: Float, onto c: Float?) -> Float {
        var sum: Float = 0
        for (a, b) in zip(x, w) { sum = sum.addingProduct(a, b) }
        let value = sum * alpha
        return c.map { $0 + value } ?? value
    }

    /// A row's activations as `ck_q8_quantize_rows` documents it: per block of 32, d = max|x| / 127 in float32 and
    /// value = x · (1/d) rounded to nearest, ties away from zero; the last block padded with zeros.
    static func quantizedActivations(_ row: ArraySlice<Float>) -> (values: [Int], scales: [Float]) {
        let blocks = (row.count + 31) / 32
        var values = [Int](repeating: 0, count: blocks * 32)
        var scales = [Float](repeating: 0, count: blocks)
        for b in 0..<blocks {
            let block = row.dropFirst(b * 32).prefix(32)
            let d = block.map(abs).max()! / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            for (p, x) in block.enumerated() {
                values[b * 32 + p] = Int((x * inverse).rounded(.toNearestOrAwayFromZero))
            }
            scales[b] = d
        }
        return (values, scales)
    }

    /// 8-bit outputs: per block of 32 the exact integer dot product of the activations' and the weights' values,
    /// entering the output's chain in one fused multiply-add with the product of the two scales; the weights are
    /// Q8_0's rounding of `weights` (`Q8.quantize`).
    static func q8Expected(_ x: Matrix, _ weights: [Float], outputs: Int, onto start: Matrix) -> Matrix {
        let inputs = x.columns
        var y = start
        for j in 0..<outputs {
            let (values, scales) = Q8.quantize(weights[(j * inputs)..<((j + 1) * inputs)])
            for i in 0..<x.rows {
                let row = quantizedActivations(x.storage[(i * inputs)..<((i + 1) * inputs)])
                var sum: Float = 0
                for block in 0..<scales.count {
                    var dot = 0
                    for p in (block * 32)..<min(inputs, block * 32 + 32) { dot += row.values[p] * Int(values[p]) }
                    let both = row.scales[block] * Float(Float16(bitPattern: scales[block]))
                    sum = sum.addingProduct(Float(dot), both)
                }
                y.storage[i * outputs + j] = start.storage[i * outputs + j] + sum
            }
        }
        return y
    }

    @Test func theBestPathIsAvailableAndNamed() {
        #expect(KernelPath.best.isAvailable && Self.paths.contains(.portable) && Self.paths.contains(.best))
        #expect(KernelPath(name: "AVX2") == .avx2 && KernelPath(name: "sse") == nil)
        #expect(KernelPath.current.isAvailable)
    }

    /// Shapes that hit the single-row tile, every row tail of the tiles, partial panels and groups, and threads.
    @Test(arguments: [
        (1, 37, 200), (1, 256, 64), (2, 19, 17), (5, 64, 130), (6, 7, 64), (7, 100, 65), (13, 33, 250), (17, 600, 70),
        (100, 300, 64),
    ])
    func linearIsTheDocumentedChainOnEveryPath(rows: Int, inputs: Int, outputs: Int) {
        let x = Matrix(rows: rows, columns: inputs, values: RowInvariantKernelTests.random(rows * inputs, seed: 21))
        let (bits, floats) = WeightsKernelTests.bf16(outputs * inputs, seed: 22)
        let start = Matrix(
            rows: rows,
            columns: outputs,
            values: RowInvariantKernelTests.random(rows * outputs, seed: 23)
        )
        /// Every output as the documented chain over `weights` (row by row, as the kernels compute with them).
        func expected(_ weights: [Float]) -> Matrix {
            var y = start
            for i in 0..<rows {
                for j in 0..<outputs {
                    y.storage[i * outputs + j] = Self.chain(
                        x.storage[(i * inputs)..<((i + 1) * inputs)],
                        Array(weights[(j * inputs)..<((j + 1) * inputs)]),
                        alpha: 1,
                        onto: start.storage[i * outputs + j]
                    )
                }
            }
            return y
        }
        let q8 = Weights(outputs: outputs, inputs: inputs, quantizing: floats)
        let halves = floats.map { Float16($0) }
        for (weights, reference) in [
            (Weights(outputs: outputs, inputs: inputs, bfloat16: bits), expected(floats)),
            (
                Weights(outputs: outputs, inputs: inputs, float16: halves.map(\.bitPattern)),
                expected(halves.map(Float.init))
            ),
            (Weights(outputs: outputs, inputs: inputs, values: floats), expected(floats)),
            (q8, Self.q8Expected(x, floats, outputs: outputs, onto: start)),
        ] {
            for path in Self.paths {
                var y = start
                RowInvariant.linear(x, weights: weights, into: &y, accumulate: true, path: path)
                #expect(y == reference, "\(path), \(weights.element)")
            }
        }
    }

    @Test func dotRowsAndWeightedRowsAgreeAcrossPaths() {
        let (m, n, k) = (9, 21, 150)
        let a = RowInvariantKernelTests.random(m * k, seed: 31)
        let b = RowInvariantKernelTests.random(n * k, seed: 32)
        var results: [[Float]] = []
        for path in Self.paths {
            var c = [Float](repeating: 1, count: m * n)
            RowInvariant.dotRows(
                a,
                lda: k,
                rows: m,
                b,
                ldb: k,
                columns: n,
                depth: k,
                into: &c,
                ldc: n,
                alpha: 0.5,
                accumulate: true,
                path: path
            )
            var out = [Float](repeating: 0, count: m * 37)
            RowInvariant.weightedRows(
                a,
                ldp: k,
                rows: m,
                b,
                ldv: 37,
                count: 80,
                width: 37,
                into: &out,
                ldo: 37,
                path: path
            )
            results.append(c + out)
        }
        #expect(results.allSatisfy { $0 == results[0] }, "paths \(Self.paths)")
    }
}
