import Foundation
import Runtime
import Tensor
import TestSupport
import Testing

@testable import Checkpoint

/// Weights are packed straight from the memory-mapped checkpoint, stacked where a layer stacks them, and the mapped
/// pages are let go: a process holds its weights once.
@Suite struct WeightsLoadingTests {
    @Test func stackedWeightsAreThePartsRowsInOrder() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let names = TensorManifest(directory.configuration).layerNames(1)
        let parts = [names.q, names.k, names.v]
        let shapes = try parts.map { try directory.entry($0).shape }
        let stacked = try directory.loadWeights(stacking: Array(zip(parts, shapes)))
        let expected = try parts.flatMap { try directory.load($0, shape: directory.entry($0).shape).values }
        #expect(stacked.element == .bfloat16 && stacked.outputs == shapes.reduce(0) { $0 + $1[0] })
        #expect(stacked.floats == expected)
    }

    @Test func theMappedPagesOfLoadedWeightsAreReleased() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyChameleonGQA)
        let file = scratch.file("model.safetensors")
        let original = try SafetensorsFile(path: file)
        let (rows, columns) = (4096, 4096)  // 32 MiB of bf16
        var specs = original.entries.values.map {
            SafetensorsWriter.Spec(name: $0.name, shape: $0.shape, dtype: $0.dtype!)
        }
        specs.append(.init(name: "big.weight", shape: [rows, columns], dtype: .bfloat16))
        let values = try Dictionary(uniqueKeysWithValues: original.entries.keys.map { ($0, try original.floats($0)) })
        try SafetensorsWriter.write(specs, to: file + ".new") { spec, range in
            // The big tensor's values are whole numbers below 128, exact in bf16.
            guard let stored = values[spec.name] else { return range.map { Float($0 % 128) } }
            return Array(stored[range])
        }
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.moveItem(atPath: file + ".new", toPath: file)

        let directory = try ModelDirectory(path: scratch.path)
        let before = try #require(ProcessMemory.fileBackedBytes())
        let weights = try directory.loadWeights("big.weight", shape: [rows, columns])
        let after = try #require(ProcessMemory.fileBackedBytes())
        #expect(weights.row(rows - 1)[columns - 1] == Float((rows * columns - 1) % 128))
        // Every one of the 32 MiB was read through the mapping; at most a page or two at the ends stays.
        let grown = after - before
        #expect(grown < rows * columns * 2 / 4, "mapped pages still resident: \(grown) bytes")
        // Reading the same tensor through a plain mapping without the release keeps them (the measure can see it).
        let mapped = try SafetensorsFile(path: file)
        let base = mapped.mappedBytes(of: "big.weight")
        var sum: UInt64 = 0
        for offset in stride(from: 0, to: rows * columns * 2, by: 4096) {
            sum &+= UInt64(base.load(fromByteOffset: offset, as: UInt8.self))
        }
        let touched = try #require(ProcessMemory.fileBackedBytes())
        #expect(
            touched - after > rows * columns * 2 / 2,
            "reading the mapping grew the resident files by \(touched - after) (sum \(sum))"
        )
    }
}
