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

    /// f16 products (this fixture's) are packed as f16 and widen exactly; one stored float type stays as stored, a
    /// stack of mixed types is widened to float32.
    @Test func f16StaysF16AndMixedStacksAreWidened() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyChameleonGQA)
        let names = TensorManifest(directory.configuration).layerNames(0)
        let parts = [names.q, names.k, names.v]
        let shapes = try parts.map { try directory.entry($0).shape }
        #expect(try parts.allSatisfy { try directory.entry($0).dtype == .float16 })
        let stacked = try directory.loadWeights(stacking: Array(zip(parts, shapes)))
        let expected = try parts.flatMap { try directory.load($0, shape: directory.entry($0).shape).values }
        #expect(stacked.element == .float16 && stacked.floats == expected)
        #expect(stacked.residentBytes == Weights.paddedOutputs(stacked.outputs) * stacked.inputs * 2)
        func entry(_ dtype: String) -> TensorEntry {
            TensorEntry(name: "w", dtypeName: dtype, shape: [2, 2], byteRange: 0..<8)
        }
        #expect(ModelDirectory.packedElement(of: [entry("F32"), entry("F32")]) == .float32)
        #expect(ModelDirectory.packedElement(of: [entry("BF16")]) == .bfloat16)
        #expect(ModelDirectory.packedElement(of: [entry("BF16"), entry("F16")]) == nil)
        #expect(ModelDirectory.packedElement(of: [entry("F16"), entry("F16")]) == .float16)
        #expect(ModelDirectory.packedElement(of: [entry("F16"), entry("F32")]) == nil)
        #expect(ModelDirectory.packedElement(of: [entry("I8"), entry("I8")]) == .q8)
        #expect(ModelDirectory.packedElement(of: [entry("I8"), entry("BF16")]) == nil)
    }

    @Test func theMappedPagesOfLoadedWeightsAreReleased() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyChameleonGQA)
        let file = scratch.file("model.safetensors")
        let (rows, columns) = (4096, 4096)  // 32 MiB of bf16
        // The fixture's file with one more tensor after its data, made with bulk copies (this test shares the test
        // run's threads): every row is columns' values c % 128, whole numbers exact in bf16.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let dataSize = bytes.count - 8 - headerLength
        header["big.weight"] = [
            "dtype": "BF16", "shape": [rows, columns], "data_offsets": [dataSize, dataSize + rows * columns * 2],
        ]
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        let row = (0..<columns).map { Widen.bfloat16Bits(Float($0 % 128)) }.withUnsafeBytes { Data($0) }
        var rewritten = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { rewritten.append(contentsOf: $0) }
        rewritten.append(json)
        rewritten.append(bytes.suffix(from: 8 + headerLength))
        for _ in 0..<rows { rewritten.append(row) }
        try rewritten.write(to: URL(fileURLWithPath: file + ".new"))
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.moveItem(atPath: file + ".new", toPath: file)

        let directory = try ModelDirectory(path: scratch.path)
        let before = try #require(ProcessMemory.fileBackedBytes())
        let weights = try directory.loadWeights("big.weight", shape: [rows, columns])
        let after = try #require(ProcessMemory.fileBackedBytes())
        #expect(weights.row(rows - 1)[columns - 1] == Float((columns - 1) % 128))
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
