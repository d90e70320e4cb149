/// The added (special) tokens of a tokenizer, matched in raw text before pre-tokenization.
///
/// Matching is leftmost-longest over UTF-8 bytes through a byte trie, as the tokenizers library's Aho-Corasick
/// matcher does, so `<image><image>` is two `<image>` tokens and `<imag` is plain text.
struct AddedTokens: Sendable {
    struct Token: Sendable {
        let id: Int
        let content: String
        let special: Bool
        let leftStrip: Bool
        let rightStrip: Bool
    }

    let tokens: [Token]
    let byID: [Int: Token]
    private var children: [[UInt8: Int]] = [[:]]
    private var terminal: [Int?] = [nil]  // node → index into tokens

    init(_ tokens: [Token]) {
        self.tokens = tokens
        byID = Dictionary(tokens.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, token) in tokens.enumerated() where !token.content.isEmpty {
            var node = 0
            for byte in token.content.utf8 {
                if let next = children[node][byte] {
                    node = next
                } else {
                    children.append([:])
                    terminal.append(nil)
                    children[node][byte] = children.count - 1
                    node = children.count - 1
                }
            }
            terminal[node] = index
        }
    }

    /// A piece of input text: either plain text to pre-tokenize, or one added token.
    enum Segment: Equatable {
        case text(Range<Int>)
        case token(Int)
    }

    /// Splits UTF-8 `bytes` into plain-text byte ranges and added-token ids.
    func segments(_ bytes: [UInt8]) -> [Segment] {
        var out: [Segment] = []
        var textStart = 0
        var i = 0
        while i < bytes.count {
            // Matches start on a character boundary, never inside a multi-byte UTF-8 sequence.
            guard bytes[i] & 0xC0 != 0x80, let (index, end) = longestMatch(bytes, at: i) else {
                i += 1
                continue
            }
            let token = tokens[index]
            var start = i
            var stop = end
            if token.leftStrip { while start > textStart, isSpace(bytes[start - 1]) { start -= 1 } }
            if token.rightStrip { while stop < bytes.count, isSpace(bytes[stop]) { stop += 1 } }
            if textStart < start { out.append(.text(textStart..<start)) }
            out.append(.token(token.id))
            textStart = stop
            i = stop
        }
        if textStart < bytes.count { out.append(.text(textStart..<bytes.count)) }
        return out
    }

    private func longestMatch(_ bytes: [UInt8], at start: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)?
        var i = start
        while i < bytes.count, let next = children[node][bytes[i]] {
            node = next
            i += 1
            if let index = terminal[node] { best = (index, i) }
        }
        return best
    }

    private func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
}
