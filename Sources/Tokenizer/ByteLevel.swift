/// GPT-2's reversible map between bytes and printable unicode characters, used by byte-level BPE.
///
/// Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100 onwards in byte order.
enum ByteLevel {
    static let byteToCharacter: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = Character(Unicode.Scalar(UInt8(byte)))
            } else {
                table[byte] = Character(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return table
    }()

    static let characterToByte: [Character: UInt8] = {
        var map: [Character: UInt8] = [:]
        for (byte, character) in byteToCharacter.enumerated() { map[character] = UInt8(byte) }
        return map
    }()

    /// The byte-level spelling of `text`'s UTF-8 bytes.
    static func encode(_ text: Substring) -> String {
        var out = String()
        out.unicodeScalars.reserveCapacity(text.utf8.count)
        for byte in text.utf8 { out.append(byteToCharacter[Int(byte)]) }
        return out
    }

    /// The bytes a token spells. A token with a character outside the map (an added token's literal text) contributes
    /// its own UTF-8 bytes, as the tokenizers library's ByteLevel decoder does.
    static func decode(_ token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = characterToByte[Character(scalar)] else { return Array(token.utf8) }
            bytes.append(byte)
        }
        return bytes
    }
}
