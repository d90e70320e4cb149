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
        }
    }
}
