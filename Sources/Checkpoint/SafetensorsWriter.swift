import Foundation
import Tensor

/// Writes safetensors files: used to generate models in the published layout (tests, benchmarks).
public enum SafetensorsWriter {
    /// A tensor to write: float32 values stored as `dtype`.
    public struct Item: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        public var dtype: DType

        public init(name: String, shape: [Int], values: [Float], dtype: DType = .float32) {
            precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) for \(values.count) values")
            self.name = name
            self.shape = shape
            self.values = values
            self.dtype = dtype
        }
    }

    /// The bytes of a safetensors file holding `items` (in name order, header padded to 8 bytes).
    public static func encode(_ items: [Item], metadata: [String: String] = ["format": "pt"]) throws -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var payload = Data()
        for item in items.sorted(by: { $0.name < $1.name }) {
            let begin = payload.count
            payload.append(bytes(item.values, as: item.dtype))
            header[item.name] = [
                "dtype": item.dtype.rawValue, "shape": item.shape, "data_offsets": [begin, payload.count],
            ]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(payload)
        return data
    }

    /// Writes `items` to `path`.
    public static func write(_ items: [Item], to path: String) throws {
        try encode(items).write(to: URL(fileURLWithPath: path))
    }

    /// A tensor to write without holding it: its values come from `fill` in pieces.
    public struct Spec: Sendable {
        public var name: String
        public var shape: [Int]
        public var dtype: DType

        public init(name: String, shape: [Int], dtype: DType) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
        }

        var count: Int { shape.reduce(1, *) }
    }

    /// Writes a file of `specs` to `path`, streaming: the header first, then each tensor (in name order) as
    /// `fill(spec, range)` gives its values `range` at a time (at most `piece` values), so a file of any size is
    /// written with a bounded amount of memory.
    public static func write(
        _ specs: [Spec],
        to path: String,
        piece: Int = 1 << 22,
        fill: (Spec, Range<Int>) throws -> [Float]
    ) throws {
        let sorted = specs.sorted { $0.name < $1.name }
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var offset = 0
        for spec in sorted {
            let end = offset + spec.count * spec.dtype.byteWidth
            header[spec.name] = ["dtype": spec.dtype.rawValue, "shape": spec.shape, "data_offsets": [offset, end]]
            offset = end
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CheckpointError.unreadable(path: path, reason: "cannot create the file")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        do {
            var length = Data()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { length.append(contentsOf: $0) }
            try handle.write(contentsOf: length + json)
            for spec in sorted {
                for start in stride(from: 0, to: spec.count, by: piece) {
                    let range = start..<min(spec.count, start + piece)
                    let values = try fill(spec, range)
                    precondition(values.count == range.count, "\(spec.name): \(values.count) values for \(range)")
                    try handle.write(contentsOf: bytes(values, as: spec.dtype))
                }
            }
        } catch {
            try? handle.close()  // the write's error is the one to report; the file is incomplete either way
            throw error
        }
        try handle.close()
    }

    /// Little-endian bytes of `values` stored as `dtype`, converted in bulk (bench models have billions of values).
    static func bytes(_ values: [Float], as dtype: DType) -> Data {
        switch dtype {
        case .float32:
            let bits = values.map { $0.bitPattern.littleEndian }
            return bits.withUnsafeBytes { Data($0) }
        case .bfloat16:
            let bits = values.map { Widen.bfloat16Bits($0).littleEndian }
            return bits.withUnsafeBytes { Data($0) }
        case .float16:
            let bits = values.map { Float16($0).bitPattern.littleEndian }
            return bits.withUnsafeBytes { Data($0) }
        case .int8:
            // Values are whole numbers in -128...127 (8-bit weights); anything else is a caller's bug.
            let bytes = values.map { value -> Int8 in
                precondition(value == value.rounded() && value >= -128 && value <= 127, "\(value) is not an int8")
                return Int8(value)
            }
            return bytes.withUnsafeBytes { Data($0) }
        }
    }
}
