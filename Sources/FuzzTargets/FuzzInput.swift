import Foundation
import Transport

/// What every fuzz target shares: reading the fuzzer's bytes as frames or files. The targets run each decoder of
/// untrusted bytes on whatever the fuzzer makes; a decoder may refuse its input with an error (that is its job), but
/// must never crash, hang or read out of bounds. `ops/fuzz.sh` runs them under libFuzzer with the address sanitizer;
/// FuzzTargetTests run every seed and every input a crash was once found with.
public enum FuzzInput {
    /// The fuzzer's bytes as ZeroMQ frames: each frame is a little-endian UInt16 length and then that many bytes (a
    /// short last frame takes what is left), so the fuzzer can vary the number and sizes of frames.
    public static func frames(_ bytes: [UInt8]) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var at = 0
        while at + 2 <= bytes.count, frames.count < 64 {
            let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8
            at += 2
            let end = min(bytes.count, at + length)
            frames.append(Array(bytes[at..<end]))
            at = end
        }
        return frames
    }

    /// Frames back into the fuzzer's format (for seeds).
    public static func joined(_ frames: [[UInt8]]) -> [UInt8] {
        frames.flatMap { frame in [UInt8(frame.count & 0xFF), UInt8(frame.count >> 8)] + frame }
    }

    /// A message's frames as the fuzzer's bytes (for seeds).
    public static func joined(_ message: WireMessage) throws -> [UInt8] {
        joined(try message.frames().map(\.bytes))
    }

    /// The fuzzer's bytes as several files: parts separated by the byte sequence 0xFF 0x00 0xFF.
    public static func parts(_ bytes: [UInt8], count: Int) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if parts.count < count - 1, index + 2 < bytes.count, bytes[index] == 0xFF, bytes[index + 1] == 0,
                bytes[index + 2] == 0xFF
            {
                parts.append(current)
                current = []
                index += 3
                continue
            }
            current.append(bytes[index])
            index += 1
        }
        parts.append(current)
        return parts + Array(repeating: [], count: max(0, count - parts.count))
    }

    /// Parts back into the fuzzer's format (for seeds).
    public static func joined(parts: [[UInt8]]) -> [UInt8] {
        Array(parts.map { $0 }.joined(separator: [0xFF, 0x00, 0xFF]))
    }

    /// A scratch folder for the file decoders, in memory where the system has one, made once per process.
    static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let folder = base + "/orthus-fuzz-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            fatalError("the fuzz targets cannot make their scratch folder \(folder): \(error)")
        }
        return folder
    }()

    /// Writes `bytes` to a scratch file named `name` and returns its path.
    static func file(_ name: String, _ bytes: [UInt8]) -> String {
        let path = scratch + "/" + name
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            fatalError("the fuzz target cannot write its scratch file \(path)")
        }
        return path
    }
}
