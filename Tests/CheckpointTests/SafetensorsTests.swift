import Foundation
import Tensor
import TestSupport
import Testing

@testable import Checkpoint

@Suite struct SafetensorsTests {
    /// A file with this exact header text and `dataBytes` zero bytes of data.
    static func raw(header: String, dataBytes: Int) -> Data {
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(count: dataBytes))
        return data
    }

    @Test(arguments: DType.allCases)
    func tensorsOfEachDTypeReadBackAsFloat32(dtype: DType) throws {
        let scratch = try TemporaryModel()
        // Every value is exact in bf16 and f16; int8 holds whole numbers from -128 to 127.
        let values: [Float] = dtype == .int8 ? [0, 1, -128, 127, 64, -3] : [0, 1, -2.5, 0.15625, 1024, -0.0078125]
        try SafetensorsWriter.write(
            [.init(name: "t", shape: [2, 3], values: values, dtype: dtype)],
            to: scratch.file("a.safetensors")
        )
        let file = try SafetensorsFile(path: scratch.file("a.safetensors"))
        #expect(file.entries["t"]?.shape == [2, 3])
        #expect(file.entries["t"]?.dtype == dtype)
        #expect(try file.floats("t") == values)
    }

    @Test func bfloat16RoundsToNearestEvenAsPyTorch() {
        // 1 + 2^-8 is halfway between two bf16 values; ties go to the even mantissa (1.0).
        #expect(Widen.bfloat16Bits(1 + 0x1p-8) == 0x3F80)
        #expect(Widen.bfloat16Bits(1 + 0x1p-8 + 0x1p-16) == 0x3F81)
    }

    @Test func aTruncatedFileIsRefusedNamingTheTensorPastTheEnd() throws {
        let scratch = try TemporaryModel()
        let data = try SafetensorsWriter.encode([
            .init(name: "a", shape: [4], values: [1, 2, 3, 4]),
            .init(name: "b", shape: [8], values: Array(repeating: 1, count: 8)),
        ])
        try scratch.write("t.safetensors", data.prefix(data.count - 5))
        let error = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("t.safetensors"))
        }
        #expect("\(error)".contains("'b'") && "\(error)".contains("truncated"))
    }

    @Test func aFileCutInsideItsHeaderIsRefused() throws {
        let scratch = try TemporaryModel()
        let data = try SafetensorsWriter.encode([.init(name: "a", shape: [4], values: [1, 2, 3, 4])])
        try scratch.write("t.safetensors", data.prefix(20))
        let error = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("t.safetensors"))
        }
        #expect("\(error)".contains("runs past the end"))
    }

    @Test func garbageIsRefusedAsAMalformedHeader() throws {
        let scratch = try TemporaryModel()
        try scratch.write("t.safetensors", Self.raw(header: "this is not json", dataBytes: 0))
        let error = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("t.safetensors"))
        }
        #expect("\(error)".contains("not a JSON object"))

        try scratch.write("huge.safetensors", Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x7B]))
        let huge = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("huge.safetensors"))
        }
        #expect("\(huge)".contains("implausible"))

        try scratch.write("empty.safetensors", Data())
        let empty = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("empty.safetensors"))
        }
        #expect("\(empty)".contains("empty"))
    }

    @Test func aByteRangeThatDisagreesWithTheShapeIsRefusedNamingTheTensor() throws {
        let scratch = try TemporaryModel()
        let header = #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        try scratch.write("t.safetensors", Self.raw(header: header, dataBytes: 8))
        let error = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("t.safetensors"))
        }
        #expect("\(error)".contains("'w'") && "\(error)".contains("needs 12 bytes"))
    }

    @Test func aShapeWhoseSizeOverflowsIsRefusedNotTrappedOn() throws {
        let scratch = try TemporaryModel()
        let header = #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#
        try scratch.write("t.safetensors", Self.raw(header: header, dataBytes: 8))
        let error = try #require(throws: CheckpointError.self) {
            try SafetensorsFile(path: scratch.file("t.safetensors"))
        }
        #expect("\(error)".contains("more than Int.max"))
    }

    @Test func anUnsupportedDTypeIsReportedWhenTheTensorIsRead() throws {
        let scratch = try TemporaryModel()
        let header = #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        try scratch.write("t.safetensors", Self.raw(header: header, dataBytes: 8))
        let file = try SafetensorsFile(path: scratch.file("t.safetensors"))
        #expect(throws: CheckpointError.unsupportedDType(name: "ids", dtype: "I64")) { _ = try file.floats("ids") }
    }
}
