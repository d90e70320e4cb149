import Foundation

/// A Hugging Face `tokenizer.json` byte-level BPE tokenizer (the Chameleon/Orthus text tokenizer).
///
/// Encoding: added tokens are matched first in the raw text; the text between them goes through the pre-tokenizer
/// (Chameleon: isolated splits for sentinels, image names, whitespace runs, digits and punctuation, then GPT-2
/// byte-level splitting), then BPE. No BOS or SEP is added here: the prompt builders add the ids they need.
public struct Tokenizer: Sendable {
    let bpe: BytePairEncoding
    let preTokenizer: PreTokenizer?
    let added: AddedTokens
    /// id → token text, for decoding.
    let tokenText: [Int: String]

    /// Size of the id space the tokenizer knows (highest id + 1).
    public let idCount: Int

    /// Loads `tokenizer.json` from `path`.
    public init(path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TokenizerError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        try self.init(json: data)
    }

    /// Parses the contents of a `tokenizer.json` file.
    public init(json data: Data) throws {
        // Not JSON and JSON of the wrong shape get the same error, below.
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError.malformed(detail: "not a JSON object")
        }
        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            throw TokenizerError.unsupported(detail: "normalizer \((normalizer as? [String: Any])?["type"] ?? "?")")
        }
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError.malformed(detail: "no 'model'") }
        guard (model["type"] as? String ?? "BPE") == "BPE" else {
            throw TokenizerError.unsupported(detail: "model type \(model["type"] ?? "?") (only BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty {
                throw TokenizerError.unsupported(detail: "model.\(key) '\(value)'")
            }
        }
        if model["byte_fallback"] as? Bool == true { throw TokenizerError.unsupported(detail: "model.byte_fallback") }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw TokenizerError.malformed(detail: "model.vocab is not an object")
        }
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = (value as? NSNumber)?.intValue, id >= 0 else {
                throw TokenizerError.malformed(detail: "vocab entry '\(token)' has no valid id")
            }
            vocabulary[token] = id
        }
        guard let mergeList = model["merges"] as? [Any] else {
            throw TokenizerError.malformed(detail: "no model.merges")
        }
        let merges: [(String, String)] = try mergeList.map { entry in
            if let pair = entry as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            if let text = entry as? String, let space = text.firstIndex(of: " ") {
                return (String(text[..<space]), String(text[text.index(after: space)...]))
            }
            throw TokenizerError.malformed(detail: "merge entry \(entry)")
        }
        bpe = try BytePairEncoding(vocabulary: vocabulary, merges: merges)
        preTokenizer = try PreTokenizer.from(json: root["pre_tokenizer"])
        if let decoder = root["decoder"] as? [String: Any], let type = decoder["type"] as? String, type != "ByteLevel" {
            throw TokenizerError.unsupported(detail: "decoder type \(type) (only ByteLevel)")
        }

        var addedTokens: [AddedTokens.Token] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = (entry["id"] as? NSNumber)?.intValue, let content = entry["content"] as? String else {
                throw TokenizerError.malformed(detail: "added token without id or content: \(entry)")
            }
            addedTokens.append(
                .init(
                    id: id,
                    content: content,
                    special: entry["special"] as? Bool ?? false,
                    leftStrip: entry["lstrip"] as? Bool ?? false,
                    rightStrip: entry["rstrip"] as? Bool ?? false
                )
            )
        }
        added = AddedTokens(addedTokens)
        var text: [Int: String] = [:]
        for (token, id) in vocabulary { text[id] = token }
        for token in addedTokens { text[token.id] = token.content }
        tokenText = text
        idCount = (text.keys.max() ?? -1) + 1
    }

    // MARK: - Encoding

    /// Token ids for `text`, without BOS or any other added framing.
    public func encode(_ text: String) throws -> [Int] {
        let bytes = Array(text.utf8)
        var ids: [Int] = []
        for segment in added.segments(bytes) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                let piece = String(decoding: bytes[range], as: UTF8.self)
                let words = preTokenizer?.split([piece[...]]) ?? [piece[...]]
                for word in words where !word.isEmpty {
                    ids += try bpe.encode(word: ByteLevel.encode(word))
                }
            }
        }
        return ids
    }

    // MARK: - Decoding

    /// Whether `id` is a special added token (skipped by `decode(skipSpecial: true)`).
    public func isSpecial(_ id: Int) -> Bool { added.byID[id]?.special ?? false }

    /// The id of a token spelled exactly `text` (vocab entry or added token).
    public func id(of text: String) -> Int? { added.tokens.first { $0.content == text }?.id ?? bpe.vocabulary[text] }

    /// The UTF-8 bytes token `id` stands for.
    public func bytes(of id: Int) throws -> [UInt8] {
        guard let text = tokenText[id] else { throw TokenizerError.unknownID(id) }
        return ByteLevel.decode(text)
    }

    /// Text for `ids`; invalid UTF-8 becomes U+FFFD, as the tokenizers library's lossy decoding does.
    public func decode(_ ids: [Int], skipSpecial: Bool = true) throws -> String {
        var bytes: [UInt8] = []
        for id in ids where !(skipSpecial && isSpecial(id)) { bytes += try self.bytes(of: id) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
