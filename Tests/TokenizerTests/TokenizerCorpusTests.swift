import Foundation
import TestSupport
import Testing

@testable import Tokenizer

/// The tokenizer against the tokenizers library on the same tokenizer.json.
@Suite struct TokenizerCorpusTests {
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
    }

    static let cases: [Case] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("goldens/tokenizer-corpus.json")))
        return try! JSONDecoder().decode([Case].self, from: data)
    }()

    @Test func corpusIsLargeAndVaried() {
        #expect(Self.cases.count >= 2000)
        let all = Self.cases.map(\.text).joined()
        #expect(all.unicodeScalars.contains { $0.properties.isEmojiPresentation })
        #expect(all.contains("日本語") && all.contains("<image>") && all.contains("\n\n") && all.contains("    "))
    }

    @Test func encodesEveryCorpusStringExactlyAsTheTokenizersLibrary() throws {
        let tokenizer = try Tokenizer(path: Fixtures.tokenizer)
        var mismatches: [String] = []
        for c in Self.cases {
            let ids = try tokenizer.encode(c.text)
            if ids != c.ids { mismatches.append("\(c.text.debugDescription): \(ids) ≠ \(c.ids)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(Self.cases.count) differ; first: \(mismatches.prefix(5))")
    }

    @Test func decodesEveryCorpusStringExactlyAsTheTokenizersLibrary() throws {
        let tokenizer = try Tokenizer(path: Fixtures.tokenizer)
        var mismatches: [String] = []
        for c in Self.cases {
            let full = try tokenizer.decode(c.ids, skipSpecial: false)
            let skipped = try tokenizer.decode(c.ids, skipSpecial: true)
            if full != c.decoded || skipped != c.decoded_skip_special || full != c.text {
                mismatches.append(c.text.debugDescription)
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) differ; first: \(mismatches.prefix(5))")
    }
}
