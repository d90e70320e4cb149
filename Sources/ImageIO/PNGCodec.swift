internal import CPNGShim
import Foundation

/// An error from libpng, with its message.
public struct PNGError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { "PNG: \(message)" }
}

/// 8-bit pixels, row-major, interleaved channels (3 = RGB, 4 = RGBA).
public struct Image8: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(
            pixels.count == width * height * channels,
            "\(pixels.count) bytes for \(width)x\(height)x\(channels)"
        )
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// PNG files through libpng's simplified API (via the CPNGShim C target).
public enum PNGCodec {
    /// The largest picture decoded by default: 4096 x 4096 pixels (64 MiB as RGBA), far above the model's input size
    /// (Orthus-7B takes 512 x 512). A PNG is a few hundred bytes for millions of pixels of one colour, so its size
    /// says nothing about what decoding it costs.
    public static let defaultMaxPixels = 4096 * 4096

    /// Decodes PNG bytes to RGBA, refusing from the header a picture of more than `maxPixels` pixels. The
    /// corresponding C function is `cpng_decode_rgba8`.
    public static func decode(_ data: Data, maxPixels: Int = defaultMaxPixels) throws(PNGError) -> Image8 {
        var message = [CChar](repeating: 0, count: 256)
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: UInt32 = 0
        var height: UInt32 = 0
        let status = data.withUnsafeBytes { bytes in
            cpng_decode_rgba8(
                bytes.bindMemory(to: UInt8.self).baseAddress,
                bytes.count,
                UInt64(max(0, maxPixels)),
                &pixels,
                &width,
                &height,
                &message,
                message.count
            )
        }
        guard status != CPNG_TOO_LARGE else {
            throw PNGError(
                message:
                    "the picture is \(width) x \(height) = \(Int(width) * Int(height)) pixels; the limit is \(maxPixels) pixels"
            )
        }
        guard status == CPNG_OK, let pixels else {
            throw PNGError(
                message: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            )
        }
        defer { cpng_free(pixels) }
        let count = Int(width) * Int(height) * 4
        return Image8(
            width: Int(width),
            height: Int(height),
            channels: 4,
            pixels: Array(UnsafeBufferPointer(start: pixels, count: count))
        )
    }

    /// Reads and decodes a PNG file of at most `maxPixels` pixels.
    public static func read(_ path: String, maxPixels: Int = defaultMaxPixels) throws -> Image8 {
        guard FileManager.default.fileExists(atPath: path) else { throw PNGError(message: "no such file: \(path)") }
        do {
            return try decode(try Data(contentsOf: URL(fileURLWithPath: path)), maxPixels: maxPixels)
        } catch let error as PNGError {
            throw PNGError(message: "\(path): \(error.message)")
        }
    }

    /// Encodes RGB pixels as PNG bytes. The corresponding C function is `cpng_encode_rgb8`.
    public static func encode(_ image: Image8) throws(PNGError) -> Data {
        precondition(image.channels == 3, "PNG encoding takes RGB")
        var message = [CChar](repeating: 0, count: 256)
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            cpng_encode_rgb8(
                pixels.baseAddress,
                UInt32(image.width),
                UInt32(image.height),
                &out,
                &length,
                &message,
                message.count
            )
        }
        guard status == CPNG_OK, let out else {
            throw PNGError(
                message: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            )
        }
        defer { cpng_free(out) }
        return Data(bytes: out, count: length)
    }

    /// Encodes and writes a PNG file.
    public static func write(_ image: Image8, to path: String) throws {
        try encode(image).write(to: URL(fileURLWithPath: path))
    }
}
