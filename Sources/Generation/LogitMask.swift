import Checkpoint
import Tokenizer

/// Which token ids may be produced at a step, by id ranges (docs/model.md §4.2-4.3).
///
/// Banned ranges get `-infinity`; when `onlyAllowed` is set, everything else does.
public struct LogitMask: Sendable, Equatable {
    public var banned: [Range<Int>]
    public var onlyAllowed: [Int]?

    public init(banned: [Range<Int>] = [], onlyAllowed: [Int]? = nil) {
        self.banned = banned
        self.onlyAllowed = onlyAllowed
    }

    /// No restriction.
    public static let none = LogitMask()

    /// Text-only decoding: no image-code ids, no BOI, no EOI (Orthus "text-only" mode; `generate` without images).
    public static func textOnly(_ ids: SpecialTokens) -> LogitMask {
        LogitMask(banned: [ids.imageCodes, ids.eoi..<(ids.eoi + 1), ids.boi..<(ids.boi + 1)])
    }

    /// Forces a single token (e.g. EOI after the last image patch).
    public static func forcing(_ id: Int) -> LogitMask { LogitMask(onlyAllowed: [id]) }

    /// Applies the mask to one row of logits in place.
    public func apply(to logits: UnsafeMutableBufferPointer<Float>) {
        if let allowed = onlyAllowed {
            let keep = allowed.filter { logits.indices.contains($0) }.map { ($0, logits[$0]) }
            for i in logits.indices { logits[i] = -.infinity }
            for (id, value) in keep { logits[id] = value }
        }
        for range in banned {
            for i in range.clamped(to: 0..<logits.count) { logits[i] = -.infinity }
        }
    }
}

/// The Chameleon special ids the generation loops need (docs/model.md §3.6).
public struct SpecialTokens: Sendable, Equatable {
    public var bos = 0
    public var pad = 1
    public var eos = 2
    /// VQ code k ↔ id k + 4.
    public var imageCodes = 4..<8196
    public var eoi = 8196
    public var boi = 8197
    /// `<reserved08706>`: ends every prompt; generation stops when it is produced.
    public var sep = 8710
    /// `<image>`: the placeholder of one continuous image patch.
    public var image = 8711

    public init() {}
}

extension SpecialTokens {
    /// The special ids of this checkpoint: image/BOI/EOI from config.json, the rest from the tokenizer's spellings,
    /// falling back to the published Chameleon ids. (config.json's `bos_token_id` is a stale default and is ignored:
    /// `<s>` is id 0.)
    public static func resolve(_ configuration: OrthusConfiguration, _ tokenizer: Tokenizer?) -> SpecialTokens {
        var ids = SpecialTokens()
        if let tokenizer {
            ids.bos = tokenizer.id(of: "<s>") ?? ids.bos
            ids.pad = tokenizer.id(of: "<pad>") ?? ids.pad
            ids.eos = tokenizer.id(of: "</s>") ?? ids.eos
            ids.sep = tokenizer.id(of: "<reserved08706>") ?? ids.sep
            ids.image = tokenizer.id(of: "<image>") ?? ids.image
        }
        ids.image = configuration.imageTokenID ?? ids.image
        ids.boi = configuration.boiTokenID ?? ids.boi
        ids.eoi = configuration.eoiTokenID ?? ids.eoi
        let codes = configuration.vqConfig?.codes ?? 8192
        ids.imageCodes = 4..<(4 + codes)
        return ids
    }
}
