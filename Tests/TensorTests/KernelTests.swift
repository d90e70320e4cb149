import Foundation
import TestSupport
import Testing

@testable import Tensor

@Suite struct RowInvariantKernelTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
    }

    /// (rows, inputs, outputs): odd sizes exercise every tail of the blocking (one row takes weight rows eight at a
    /// time, more rows four at a time).
    @Test(arguments: [
        (1, 16, 4), (3, 17, 5), (4, 64, 8), (7, 33, 13), (16, 100, 31), (9, 1, 3), (5, 255, 2), (1, 33, 27),
        (2, 70, 21),
    ])
    func linearMatchesOpenBLASSgemm(rows: Int, inputs: Int, outputs: Int) {
        let x = Self.random(rows * inputs, seed: 1)
        let w = Self.random(outputs * inputs, seed: 2)
        var ours = [Float](repeating: 0, count: rows * outputs)
        var blas = ours
        RowInvariant.linear(x, rows: rows, inputs: inputs, weight: w, outputs: outputs, into: &ours)
        BLAS.linear(x, rows: rows, inputs: inputs, weight: w, outputs: outputs, into: &blas)
        for (a, b) in zip(ours, blas) { #expect(abs(a - b) <= 1e-5 * Float(inputs)) }
    }

    @Test func aRowGivesBitIdenticalResultsWhateverTheRowsAroundIt() {
        let inputs = 77, outputs = 19
        let x = Self.random(11 * inputs, seed: 3)
        let w = Self.random(outputs * inputs, seed: 4)
        var batch = [Float](repeating: 0, count: 11 * outputs)
        RowInvariant.linear(x, rows: 11, inputs: inputs, weight: w, outputs: outputs, into: &batch)
        for r in 0..<11 {
            var single = [Float](repeating: 0, count: outputs)
            Array(x[(r * inputs)..<((r + 1) * inputs)]).withUnsafeBufferPointer { row in
                RowInvariant.linear(
                    row.baseAddress!,
                    rows: 1,
                    inputs: inputs,
                    weight: w,
                    outputs: outputs,
                    into: &single
                )
            }
            #expect(single == Array(batch[(r * outputs)..<((r + 1) * outputs)]))
        }
    }

    @Test func accumulateAddsToTheOutput() {
        let x: [Float] = [1, 2, 3]
        let w: [Float] = [1, 1, 1, 0, 1, 0]
        var y: [Float] = [10, 20]
        RowInvariant.linear(x, rows: 1, inputs: 3, weight: w, outputs: 2, into: &y, accumulate: true)
        #expect(y == [16, 22])
    }

    @Test func weightedRowsSumsProbabilityTimesValues() {
        let p: [Float] = [0.5, 0.25, 0.25, 1, 0, 0]  // 2 rows over 3 values
        let v = Self.random(3 * 21, seed: 5)  // width 21: one 16-lane block and a tail
        var out = [Float](repeating: 0, count: 2 * 21)
        RowInvariant.weightedRows(p, ldp: 3, rows: 2, v, ldv: 21, count: 3, width: 21, into: &out, ldo: 21)
        for e in 0..<21 {
            #expect(abs(out[e] - (0.5 * v[e] + 0.25 * v[21 + e] + 0.25 * v[42 + e])) < 1e-6)
            #expect(out[21 + e] == v[e])
        }
    }

    /// Rows and value columns are computed in blocks (4 rows by 64 columns, then 16-column and single-row rests), yet
    /// every element is the in-order fused multiply-add over the values, bit for bit, whatever block it fell in.
    @Test(arguments: [(6, 37, 100), (4, 5, 64), (1, 300, 128), (9, 1, 17)])
    func weightedRowsIsTheInOrderSumInEveryBlock(rows: Int, count: Int, width: Int) {
        let p = Self.random(rows * count, seed: 6).map { abs($0) }
        let v = Self.random(count * width, seed: 7)
        var out = [Float](repeating: .nan, count: rows * width)
        RowInvariant.weightedRows(
            p,
            ldp: count,
            rows: rows,
            v,
            ldv: width,
            count: count,
            width: width,
            into: &out,
            ldo: width
        )
        for r in 0..<rows {
            for e in 0..<width {
                var expected: Float = 0
                for j in 0..<count { expected = expected.addingProduct(p[r * count + j], v[j * width + e]) }
                #expect(out[r * width + e] == expected)
            }
        }
    }
}

@Suite struct RowKernelTests {
    @Test func rmsNormMatchesTheFormula() {
        var x: [Float] = [1, 2, 3, 4]
        x.withUnsafeMutableBufferPointer {
            RowKernels.rmsNorm($0.baseAddress!, rows: 1, width: 4, weight: [1, 1, 2, 0.5], eps: 1e-5)
        }
        let scale = 1 / (7.5 + 1e-5).squareRoot()
        #expect(zip(x, [1 * scale, 2 * scale, 6 * scale, 2 * scale]).allSatisfy { abs($0 - Float($1)) < 1e-6 })
    }

    @Test func softmaxIgnoresMaskedEntriesAndSumsToOne() {
        var x: [Float] = [1000, 1001, -.infinity, 999]
        x.withUnsafeMutableBufferPointer { RowKernels.softmax($0.baseAddress!, count: 4) }
        #expect(x[2] == 0)
        #expect(abs(x.reduce(0, +) - 1) < 1e-6)
        #expect(x[1] > x[0] && x[0] > x[3])
    }
}

@Suite struct NumpyFileTests {
    @Test func writtenArraysReadBackWithShape() throws {
        let scratch = try ScratchFolder("npy")
        let path = scratch.file("a.npy")
        let values: [Float] = (0..<12).map { Float($0) * 0.5 }
        try NumpyFile.write(values, shape: [3, 4], to: path)
        let (shape, read) = try NumpyFile.read(path)
        #expect(shape == [3, 4] && read == values)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect((10 + Int(bytes[8]) + Int(bytes[9]) * 256) % 64 == 0)  // header padded as numpy does
    }

    @Test func aNonNumpyFileIsRefused() throws {
        let scratch = try ScratchFolder("npy")
        let path = scratch.file("a.npy")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: NumpyFileError.self) { _ = try NumpyFile.read(path) }
    }
}
