import Foundation
import TestSupport
import Testing

@testable import Tokenizer

@Suite struct StreamingDetokenizerTests {
    let tokenizer = try! Tokenizer(path: Fixtures.tokenizer)

    @Test(arguments: ["👨‍👩‍👧‍👦 family", "日本語のテキスト", "café 🇫🇷 ok", "plain ascii", "½ ¾ — “quoted”"])
    func streamingNeverEmitsHalfACharacterAndAddsUpToTheWholeDecode(text: String) throws {
        let ids = try tokenizer.encode(text)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(try stream.push(id)) }
        pieces.append(stream.finish())
        #expect(!pieces.joined().contains("\u{FFFD}"))
        #expect(pieces.joined() == text)
        #expect(pieces.allSatisfy { !$0.unicodeScalars.contains("\u{FFFD}") })
    }

    @Test func multiByteCharactersReallyAreSplitAcrossTokens() throws {
        // Guards the test above: with this small vocabulary an emoji spans several byte-level tokens.
        let ids = try tokenizer.encode("👨‍👩‍👧‍👦")
        #expect(ids.count > 1)
        #expect(try ids.contains { String(decoding: try tokenizer.bytes(of: $0), as: UTF8.self).contains("\u{FFFD}") })
    }

    @Test func specialTokensAreSkippedWhenStreaming() throws {
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let ids = try [0] + tokenizer.encode("hi") + [8710]
        let text = try ids.map { try stream.push($0) }.joined() + stream.finish()
        #expect(text == "hi")
    }

    @Test func anUnfinishedCharacterAtTheEndBecomesAReplacementCharacter() throws {
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let firstByteOfEmoji = try tokenizer.encode("😀").first!
        #expect(try stream.push(firstByteOfEmoji) == "")
        #expect(stream.finish() == "\u{FFFD}")
    }

    @Test func completePrefixLengthHoldsBackOnlyAnIncompleteTail() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        #expect(StreamingDetokenizer.completePrefixLength(Array("ab".utf8) + euro.prefix(2)) == 2)
        #expect(StreamingDetokenizer.completePrefixLength(Array("ab".utf8) + euro) == 5)
        #expect(StreamingDetokenizer.completePrefixLength([0xFF, 0x41]) == 2)
    }
}

@Suite struct TokenizerBehaviourTests {
    let tokenizer = try! Tokenizer(path: Fixtures.tokenizer)

    @Test func specialTokenStringsInsideTextMapToTheirIDs() throws {
        let ids = try tokenizer.encode("a<image><image>b<racm3:break><reserved08706>")
        #expect(ids.contains(8711) && ids.filter { $0 == 8711 }.count == 2 && ids.contains(8197) && ids.contains(8710))
        #expect(try !tokenizer.encode("<imag").contains(8711))
    }

    @Test func theChameleonIDsResolveByTheirSpellings() {
        #expect(tokenizer.id(of: "<s>") == 0 && tokenizer.id(of: "</s>") == 2)
        #expect(tokenizer.id(of: "<reserved08706>") == 8710 && tokenizer.id(of: "<image>") == 8711)
        #expect(tokenizer.isSpecial(8197) && !tokenizer.isSpecial(try! tokenizer.encode("a")[0]))
    }

    @Test func decodingAnUnknownIDIsAnError() {
        #expect(throws: TokenizerError.unknownID(1_000_000)) { _ = try tokenizer.decode([1_000_000]) }
    }

    @Test func malformedOrUnsupportedFilesAreRefusedWithTheReason() throws {
        #expect(throws: TokenizerError.malformed(detail: "not a JSON object")) {
            _ = try Tokenizer(json: Data("[1]".utf8))
        }
        var object =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.tokenizer)))
            as! [String: Any]
        var model = object["model"] as! [String: Any]
        model["type"] = "WordPiece"
        object["model"] = model
        let error = try #require(throws: TokenizerError.self) {
            _ = try Tokenizer(json: JSONSerialization.data(withJSONObject: object))
        }
        #expect("\(error)".contains("WordPiece"))
        #expect(throws: TokenizerError.self) { _ = try Tokenizer(path: "/nonexistent/tokenizer.json") }
    }

    @Test func splitBehavioursFollowTheTokenizersLibrary() throws {
        let dash = try PreTokenizer.compile("-")
        let text: Substring = "the-final--countdown"
        #expect(
            PreTokenizer.split(text, pattern: dash, behavior: .isolated, invert: false) == [
                "the", "-", "final", "-", "-", "countdown",
            ]
        )
        #expect(
            PreTokenizer.split(text, pattern: dash, behavior: .removed, invert: false) == ["the", "final", "countdown"]
        )
        #expect(
            PreTokenizer.split(text, pattern: dash, behavior: .mergedWithPrevious, invert: false) == [
                "the-", "final-", "-", "countdown",
            ]
        )
        #expect(
            PreTokenizer.split(text, pattern: dash, behavior: .mergedWithNext, invert: false) == [
                "the", "-final", "-", "-countdown",
            ]
        )
    }
}
