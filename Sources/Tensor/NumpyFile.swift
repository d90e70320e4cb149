import Foundation

/// Errors reading a `.npy` file.
public enum NumpyFileError: Error, CustomStringConvertible {
    case notNumpy(path: String)
    case unsupported(path: String, detail: String)

    public var description: String {
        switch self {
        case .notNumpy(let path): "\(path) is not a .npy file (bad magic or header)"
        case .unsupported(let path, let detail): "\(path): unsupported .npy content: \(detail)"
        }
    }
}

/// numpy's `.npy` format (version 1.0), little-endian float32, C order: the exchange format with other
/// implementations (`orthus logits --out`, golden files, injected noise).
public enum NumpyFile {
    /// Serializes `values` with `shape` as a float32 `.npy` file.
    public static func encode(_ values: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        values.withUnsafeBufferPointer {
            data.append(
                UnsafeBufferPointer(
                    start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self),
                    count: values.count * 4
                )
            )
        }
        return data
    }

    /// Writes `values` with `shape` to `path`.
    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try encode(values, shape: shape).write(to: URL(fileURLWithPath: path))
    }

    /// Reads a float32 (`<f4`) C-order `.npy` file; returns its shape and values.
    public static func read(_ path: String) throws -> (shape: [Int], values: [Float]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw NumpyFileError.notNumpy(path: path)
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw NumpyFileError.notNumpy(path: path) }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        }
        guard bytes.count >= headerStart + headerLength,
            let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8)
        else { throw NumpyFileError.notNumpy(path: path) }
        guard header.contains("'descr': '<f4'") else {
            throw NumpyFileError.unsupported(path: path, detail: "dtype is not little-endian float32 in \(header)")
        }
        guard header.contains("'fortran_order': False") else {
            throw NumpyFileError.unsupported(path: path, detail: "Fortran order")
        }
        guard let open = header.firstIndex(of: "("), let close = header[open...].firstIndex(of: ")") else {
            throw NumpyFileError.notNumpy(path: path)
        }
        let shape = try header[header.index(after: open)..<close].split(separator: ",").compactMap { part -> Int? in
            let text = part.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return nil }
            guard let value = Int(text), value >= 0 else {
                throw NumpyFileError.unsupported(path: path, detail: "shape entry '\(text)'")
            }
            return value
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (value, o) = acc.0.multipliedReportingOverflow(by: d)
            return (value, acc.1 || o)
        }
        guard !overflow else { throw NumpyFileError.unsupported(path: path, detail: "shape \(shape) is too large") }
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == count * 4 else {
            throw NumpyFileError.unsupported(
                path: path,
                detail: "shape \(shape) needs \(count * 4) bytes, file has \(bytes.count - dataStart)"
            )
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[dataStart...]))
            }
        }
        return (shape, values)
    }
}
