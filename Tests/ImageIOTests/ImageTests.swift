import Foundation
import Tensor
import TestSupport
import Testing

@testable import ImageIO

@Suite struct PreprocessingTests {
    /// PIL (LANCZOS resize) computed the goldens; the bound is one 8-bit level (0.0078 after scaling). Measured: the
    /// four images whose passes run horizontal-then-vertical in Pillow match exactly; Pillow 13 runs the portrait's
    /// passes vertical-first (its order rule is not in the published Resample.c), leaving 0.29 levels on average.
    @Test(arguments: ["landscape-37x23", "downscale-64x48", "gray-16x16", "palette-30x30", "portrait-alpha-20x41"])
    func preprocessingMatchesPIL(name: String) throws {
        let image = try PNGCodec.read(Fixtures.image(name))
        let ours = try ChameleonImage.preprocess(image, resolution: 16)
        let golden = try Fixtures.golden("preprocess-\(name)")
        #expect(golden.shape == [3, 16, 16])
        let meanLevels =
            zip(ours, golden.values).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(ours.count) / 0.0078
        #expect(meanLevels <= 1, "mean difference \(meanLevels) levels")
    }

    @Test func postprocessingMatchesTheReference() throws {
        let pixels = try Fixtures.golden("vq-decode-pixels")
        let golden = try Fixtures.golden("vq-decode-rgb8")
        let image = ChameleonImage.postprocess(pixels.values, resolution: 16)
        #expect(image.pixels.map(Float.init) == golden.values)
    }

    @Test func aZeroSizeImageIsRefused() {
        #expect(throws: ImageError.zeroSize(width: 0, height: 5)) {
            _ = try ChameleonImage.preprocess(Image8(width: 0, height: 5, channels: 4, pixels: []), resolution: 16)
        }
    }
}

@Suite struct PNGCodecTests {
    /// 20000 x 20000 claimed in 57 bytes (1.6 GB as RGBA): refused from the header, naming the limit.
    @Test func aPictureOverThePixelLimitIsRefusedFromItsHeader() throws {
        let bomb = PNGBomb.bytes(width: 20000, height: 20000)
        #expect(bomb.count < 100)
        let limit = PNGCodec.defaultMaxPixels
        let refusal = PNGError(
            message: "the picture is 20000 x 20000 = 400000000 pixels; the limit is \(limit) pixels"
        )
        #expect(throws: refusal) { _ = try PNGCodec.decode(bomb) }
        // A real picture exactly at a limit decodes; one pixel over, it is refused.
        let pixels = [UInt8](repeating: 200, count: 6 * 4 * 3)
        let data = try PNGCodec.encode(Image8(width: 6, height: 4, channels: 3, pixels: pixels))
        #expect(try PNGCodec.decode(data, maxPixels: 24).width == 6)
        #expect(throws: PNGError.self) { _ = try PNGCodec.decode(data, maxPixels: 23) }
    }

    @Test func anEncodedImageDecodesToTheSamePixelsWithOpaqueAlpha() throws {
        let pixels = (0..<(7 * 5 * 3)).map { UInt8(($0 * 37) % 256) }
        let data = try PNGCodec.encode(Image8(width: 7, height: 5, channels: 3, pixels: pixels))
        #expect(Array(data.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        let decoded = try PNGCodec.decode(data)
        #expect(decoded.width == 7 && decoded.height == 5 && decoded.channels == 4)
        #expect((0..<35).allSatisfy { decoded.pixels[$0 * 4 + 3] == 255 })
        #expect((0..<35).flatMap { i in (0..<3).map { decoded.pixels[i * 4 + $0] } } == pixels)
    }

    @Test func aFileThatIsNotAPNGIsRefusedWithTheReason() throws {
        let error = try #require(throws: PNGError.self) { _ = try PNGCodec.decode(Data("GIF89a not a png".utf8)) }
        #expect(error.message.contains("not a PNG"))
    }

    @Test func aTruncatedPNGIsRefused() throws {
        let full = try Data(contentsOf: URL(fileURLWithPath: Fixtures.image("landscape-37x23")))
        let error = try #require(throws: PNGError.self) { _ = try PNGCodec.decode(full.prefix(full.count / 2)) }
        #expect(!error.message.isEmpty)
    }

    @Test func aPNGDeclaringZeroWidthIsRefused() throws {
        // A valid signature and IHDR chunk (with its CRC) that declares a 0x4 image.
        var ihdr: [UInt8] = Array("IHDR".utf8) + [0, 0, 0, 0, 0, 0, 0, 4, 8, 2, 0, 0, 0]
        let crc = Self.crc32(ihdr)
        ihdr += [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)]
        let data = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr)
        let error = try #require(throws: PNGError.self) { _ = try PNGCodec.decode(data) }
        #expect(!error.message.isEmpty)
    }

    @Test func aMissingFileIsNamed() throws {
        let error = try #require(throws: PNGError.self) { _ = try PNGCodec.read("/nonexistent/in.png") }
        #expect(error.message.contains("/nonexistent/in.png"))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
