import Foundation
import Tensor
import TestSupport
import Testing

@testable import Checkpoint

/// `orthus quantize`'s checkpoint: the layers' projections and the LM head as int8 with f16 scales (Q8_0's rounding
/// of the original's values), everything else byte for byte, and the engine loads it.
@Suite struct QuantizationTests {
    @Test func productsBecomeInt8WithScalesAndTheRestIsKept() throws {
        let scratch = try ScratchFolder("quantize")
        let source = try ModelDirectory(path: Fixtures.tinyOrthus)
        let report = try Quantization.writeQ8(from: source, to: scratch.file("q8"))
        let quantized = try ModelDirectory(path: scratch.file("q8"))
        let layers = source.configuration.layerCount
        #expect(report.quantized == 7 * layers + 1 && report.bytesAfter < report.bytesBefore)
        let manifest = TensorManifest(source.configuration)
        for name in manifest.layerNames(1).products + [TensorManifest.lmHead] {
            let original = try source.entry(name)
            let entry = try quantized.entry(name)
            let scale = try quantized.entry(ModelDirectory.scaleName(name))
            #expect(entry.dtypeName == "I8" && entry.shape == original.shape)
            #expect(scale.dtypeName == "F16" && scale.shape == [original.shape[0], Q8.blocks(original.shape[1])])
            // The stored values are Q8_0's of the original rows.
            let file = try quantized.file(named: quantized.weightMap[name]!)
            let sourceFile = try source.file(named: source.weightMap[name]!)
            let row = try sourceFile.floats(name, elements: 0..<original.shape[1])
            let (values, scales) = Q8.quantize(row[...])
            #expect(try file.floats(name, elements: 0..<original.shape[1]) == values.map(Float.init))
            #expect(
                try file.floats(ModelDirectory.scaleName(name), elements: 0..<scales.count)
                    == scales.map { Float(Float16(bitPattern: $0)) }
            )
        }
        for name in source.tensorNames where !Quantization.quantizes(try source.entry(name)) {
            let (a, b) = (try source.entry(name), try quantized.entry(name))
            #expect(a.dtypeName == b.dtypeName && a.shape == b.shape)
            #expect(try source.load(name, shape: a.shape).values == quantized.load(name, shape: b.shape).values)
        }
        // Loaded, a q8 product is the packed 8-bit weights, counted as such by the summary.
        let q = try quantized.loadWeights(
            stacking: [manifest.layerNames(0).q, manifest.layerNames(0).k].map {
                ($0, try quantized.entry($0).shape)
            }
        )
        #expect(q.element == .q8)
        let summary = try CheckpointSummary(quantized)
        let layer = summary.byComponent[.layer(0)]!.residentBytes
        #expect(try layer < CheckpointSummary(source).byComponent[.layer(0)]!.residentBytes)
        #expect(throws: CheckpointError.self) { _ = try Quantization.writeQ8(from: source, to: source.path) }
    }

    /// An int8 value of -128 (Q8_0 never writes it; the AVX2 kernel's sign trick cannot take it) is refused at load,
    /// naming the tensor and the row.
    @Test func aValueOfMinus128IsRefusedAtLoad() throws {
        let scratch = try ScratchFolder("quantize-128")
        let source = try ModelDirectory(path: Fixtures.tinyOrthus)
        _ = try Quantization.writeQ8(from: source, to: scratch.file("q8"))
        let name = TensorManifest(source.configuration).layerNames(0).q
        let directory = try ModelDirectory(path: scratch.file("q8"))
        let entry = try directory.entry(name)
        let path = scratch.file("q8") + "/" + directory.weightMap[name]!
        // The data follow the 8-byte header length and the header; row 1, input 3.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let headerBytes = try #require(try handle.read(upToCount: 8))
        let header = headerBytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        try handle.seek(toOffset: UInt64(8 + header + entry.byteRange.lowerBound + entry.shape[1] + 3))
        try handle.write(contentsOf: [0x80])
        try handle.close()
        let damaged = try ModelDirectory(path: scratch.file("q8"))
        #expect {
            _ = try damaged.loadWeights(stacking: [(name, entry.shape)])
        } throws: { error in
            "\(error)".contains(name) && "\(error)".contains("row 1 holds the int8 value -128")
        }
    }
}
