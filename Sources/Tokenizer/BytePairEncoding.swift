import Synchronization

/// Byte-level BPE: a word (one pre-tokenized piece, spelled in byte-level characters) starts as one symbol per
/// character, and the adjacent pair with the lowest merge rank is merged until no listed merge applies.
final class BytePairEncoding: Sendable {
    struct Pair: Hashable {
        let left: Int
        let right: Int
    }

    let vocabulary: [String: Int]
    /// Pair of token ids → (rank, merged id).
    let merges: [Pair: (rank: Int, merged: Int)]
    private let cache = Mutex<[String: [Int]]>([:])

    init(vocabulary: [String: Int], merges: [(String, String)]) throws {
        self.vocabulary = vocabulary
        var table: [Pair: (Int, Int)] = [:]
        for (rank, (left, right)) in merges.enumerated() {
            guard let l = vocabulary[left], let r = vocabulary[right], let m = vocabulary[left + right] else {
                throw TokenizerError.malformed(detail: "merge '\(left) \(right)' uses tokens missing from the vocab")
            }
            if table[Pair(left: l, right: r)] == nil { table[Pair(left: l, right: r)] = (rank, m) }
        }
        self.merges = table
    }

    /// Token ids for one byte-level word.
    func encode(word: String) throws -> [Int] {
        if let hit = cache.withLock({ $0[word] }) { return hit }
        var symbols: [Int] = []
        symbols.reserveCapacity(word.unicodeScalars.count)
        for scalar in word.unicodeScalars {
            guard let id = vocabulary[String(scalar)] else {
                throw TokenizerError.malformed(
                    detail: "byte symbol U+\(String(scalar.value, radix: 16)) missing from the vocab"
                )
            }
            symbols.append(id)
        }
        while symbols.count > 1 {
            var best: (index: Int, rank: Int, merged: Int)?
            for i in 0..<(symbols.count - 1) {
                if let merge = merges[Pair(left: symbols[i], right: symbols[i + 1])],
                    best == nil || merge.rank < best!.rank
                {
                    best = (i, merge.rank, merge.merged)
                }
            }
            guard let best else { break }
            symbols[best.index] = best.merged
            symbols.remove(at: best.index + 1)
        }
        cache.withLock { cache in
            if cache.count > 100_000 { cache.removeAll() }
            cache[word] = symbols
        }
        return symbols
    }
}
