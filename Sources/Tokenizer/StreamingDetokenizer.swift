/// Turns a stream of token ids into text pieces without ever emitting half a UTF-8 character.
///
/// Byte-level tokens can end inside a multi-byte character (an emoji spans several tokens); the incomplete tail is
/// held back until the bytes that complete it arrive, or until `finish()`.
public struct StreamingDetokenizer: Sendable {
    let tokenizer: Tokenizer
    let skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    public mutating func push(_ id: Int) throws -> String {
        if skipSpecial && tokenizer.isSpecial(id) { return "" }
        pending += try tokenizer.bytes(of: id)
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Flushes whatever is held back (an unfinished character becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a multi-byte sequence that could still be completed.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        // Look back at most 3 bytes for the lead byte of a sequence that is still missing continuation bytes.
        var i = bytes.count - 1
        var continuation = 0
        while i >= 0, continuation < 3, bytes[i] & 0xC0 == 0x80 {
            continuation += 1
            i -= 1
        }
        guard i >= 0 else { return bytes.count }
        let lead = bytes[i]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 1
        case 0xE0...0xEF: needed = 2
        case 0xF0...0xF4: needed = 3
        default: return bytes.count  // ASCII or an invalid byte: nothing to wait for
        }
        return continuation < needed ? i : bytes.count
    }
}
