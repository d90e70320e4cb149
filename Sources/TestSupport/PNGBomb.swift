import Foundation

/// A PNG that claims a huge picture in a few dozen bytes: the signature, an IHDR chunk for `width` x `height` 8-bit
/// RGB, and the start of an IDAT. A decoder that allocates from the header before checking it spends
/// width x height x 4 bytes; one that checks refuses it at once.
public enum PNGBomb {
    public static func bytes(width: UInt32, height: UInt32) -> Data {
        var data = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        for value in [width, height] { header += withUnsafeBytes(of: value.bigEndian) { Data($0) } }
        header += Data([8, 2, 0, 0, 0])  // 8-bit, RGB, deflate, adaptive filtering, no interlace
        data += chunk("IHDR", header)
        data += chunk("IDAT", Data([0x78, 0x9C, 0x00]))
        return data
    }

    static func chunk(_ type: String, _ payload: Data) -> Data {
        let typed = Data(type.utf8) + payload
        var out = withUnsafeBytes(of: UInt32(payload.count).bigEndian) { Data($0) }
        out += typed
        out += withUnsafeBytes(of: crc32(typed).bigEndian) { Data($0) }
        return out
    }

    /// The CRC-32 PNG chunks carry (ISO 3309, reflected, polynomial 0xEDB88320).
    static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~crc
    }
}
