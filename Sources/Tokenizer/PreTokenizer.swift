import Foundation

/// The pre-tokenizers of `tokenizer.json` that byte-level BPE models use: `Sequence`, `Split` and `ByteLevel`.
///
/// Each one maps a list of pieces of text to a finer list; BPE then runs on each piece separately. Regexes run with
/// unicode-scalar semantics (not grapheme clusters), as the Rust tokenizers library matches code points.
indirect enum PreTokenizer: @unchecked Sendable {  // Regex values are immutable after construction
    case sequence([PreTokenizer])
    case split(pattern: Regex<AnyRegexOutput>, behavior: SplitBehavior, invert: Bool)
    /// Splits with the GPT-2 pattern when it has one (`use_regex`); the byte mapping itself happens before BPE.
    case byteLevel(addPrefixSpace: Bool, gpt2: Regex<AnyRegexOutput>?)

    enum SplitBehavior: String {
        case isolated = "Isolated"
        case removed = "Removed"
        case mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext"
    }

    /// The pattern the tokenizers library's ByteLevel pre-tokenizer uses.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    static func compile(_ pattern: String) throws -> Regex<AnyRegexOutput> {
        do {
            return try Regex(pattern).matchingSemantics(.unicodeScalar)
        } catch {
            throw TokenizerError.unsupported(detail: "regex \(pattern): \(error)")
        }
    }

    /// Builds the pre-tokenizer described by a `pre_tokenizer` JSON object.
    static func from(json: Any?) throws -> PreTokenizer? {
        guard let json, !(json is NSNull) else { return nil }
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError.malformed(detail: "pre_tokenizer without a type")
        }
        switch type {
        case "Sequence":
            guard let items = object["pretokenizers"] as? [Any] else {
                throw TokenizerError.malformed(detail: "Sequence pre_tokenizer without 'pretokenizers'")
            }
            return .sequence(try items.compactMap { try from(json: $0) })
        case "Split":
            guard let pattern = object["pattern"] as? [String: Any] else {
                throw TokenizerError.malformed(detail: "Split pre_tokenizer without a pattern")
            }
            let regex: Regex<AnyRegexOutput>
            if let text = pattern["Regex"] as? String {
                regex = try compile(text)
            } else if let literal = pattern["String"] as? String {
                regex = try compile(escape(literal))
            } else {
                throw TokenizerError.malformed(detail: "Split pattern is neither Regex nor String")
            }
            let name = object["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw TokenizerError.unsupported(detail: "Split behavior \(name)")
            }
            return .split(pattern: regex, behavior: behavior, invert: object["invert"] as? Bool ?? false)
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: object["add_prefix_space"] as? Bool ?? false,
                gpt2: object["use_regex"] as? Bool ?? true ? try compile(gpt2Pattern) : nil
            )
        default:
            throw TokenizerError.unsupported(detail: "pre_tokenizer type \(type)")
        }
    }

    private static func escape(_ literal: String) -> String {
        var out = ""
        for scalar in literal.unicodeScalars {
            if "\\^$.|?*+()[]{}-".unicodeScalars.contains(scalar) { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out
    }

    /// Applies this pre-tokenizer to each piece.
    func split(_ pieces: [Substring]) -> [Substring] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.split($0) }
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { Self.split($0, pattern: pattern, behavior: behavior, invert: invert) }
        case .byteLevel(let addPrefixSpace, let gpt2):
            return pieces.flatMap { piece -> [Substring] in
                let text = addPrefixSpace && !piece.hasPrefix(" ") ? Substring(" " + piece) : piece
                guard let gpt2 else { return [text] }
                return Self.split(text, pattern: gpt2, behavior: .isolated, invert: false)
            }
        }
    }

    /// Splits `text` at the matches of `pattern`, as the tokenizers library's `Split` does.
    static func split(
        _ text: Substring,
        pattern: Regex<AnyRegexOutput>,
        behavior: SplitBehavior,
        invert: Bool
    ) -> [Substring] {
        // (range, isMatch) spans covering the whole text, in order.
        var spans: [(Range<Substring.Index>, Bool)] = []
        var cursor = text.startIndex
        for match in text.matches(of: pattern) where !match.range.isEmpty {
            if cursor < match.range.lowerBound { spans.append((cursor..<match.range.lowerBound, false)) }
            spans.append((match.range, true))
            cursor = match.range.upperBound
        }
        if cursor < text.endIndex { spans.append((cursor..<text.endIndex, false)) }
        if invert { spans = spans.map { ($0.0, !$0.1) } }

        switch behavior {
        case .isolated:
            return spans.map { text[$0.0] }
        case .removed:
            return spans.filter { !$0.1 }.map { text[$0.0] }
        case .mergedWithPrevious, .mergedWithNext:
            // "the-final--countdown" split on "-": previous → the- final- - countdown; next → the -final - -countdown.
            var merged: [Range<Substring.Index>] = []
            var previousWasMatch = false
            for (range, isMatch) in spans {
                let joins =
                    behavior == .mergedWithPrevious ? isMatch && !previousWasMatch : !isMatch && previousWasMatch
                if joins, let last = merged.popLast() {
                    merged.append(last.lowerBound..<range.upperBound)
                } else {
                    merged.append(range)
                }
                previousWasMatch = isMatch
            }
            return merged.map { text[$0] }
        }
    }
}
