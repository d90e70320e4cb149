import Checkpoint
import Heads
import Model
import Tensor
import Tokenizer

/// Why a generation ended.
public enum StopReason: Sendable, Equatable {
    case stopToken(Int)
    case maxTokens
    case contextFull
}

/// The result of a generation.
public struct GenerationResult: Sendable, Equatable {
    public var tokens: [Int]
    public var reason: StopReason
}

extension TextModel {
    /// The Orthus text prompt: `BOS + BPE(prompt) + SEP` (orthus-model.md 4.1-4.2).
    public static func promptIDs(_ prompt: String, tokenizer: Tokenizer, special: SpecialTokens) throws -> [Int] {
        [special.bos] + (try tokenizer.encode(prompt)) + [special.sep]
    }

    /// The mask for text-only decoding: no image codes, BOI or EOI, and no id past the tokenizer's last one (a
    /// checkpoint's vocab_size may exceed what its tokenizer can spell).
    public func textOnlyMask(_ special: SpecialTokens, tokenizer: Tokenizer) -> LogitMask {
        Self.textOnlyMask(configuration: configuration, special: special, tokenizer: tokenizer)
    }

    /// The text-only mask from the configuration alone (the coordinator holds no weights).
    public static func textOnlyMask(
        configuration: OrthusConfiguration,
        special: SpecialTokens,
        tokenizer: Tokenizer
    ) -> LogitMask {
        var mask = LogitMask.textOnly(special)
        if tokenizer.idCount < configuration.vocabSize {
            mask.banned.append(tokenizer.idCount..<configuration.vocabSize)
        }
        return mask
    }

    /// Generates up to `options.maxTokens` tokens after `prompt` with the KV cache, calling `onToken` as each is chosen.
    ///
    /// Token n draws its randomness from `CounterRandom(seed, stream 0, counter n)`, so a seeded run is reproducible.
    public func generate(
        prompt: [Int],
        options: GenerationOptions,
        onToken: (Int) throws -> Void = { _ in }
    ) throws -> GenerationResult {
        try generate(prompt: prompt.map(StageInput.token), options: options, onToken: onToken)
    }

    /// Generates after a prompt that may hold image latents (image-to-text).
    public func generate(
        prompt: [StageInput],
        options: GenerationOptions,
        onToken: (Int) throws -> Void = { _ in }
    ) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        guard prompt.count < configuration.contextLength else {
            throw GenerationError.promptTooLong(tokens: prompt.count, context: configuration.contextLength)
        }
        var caches = [stack.makeCache()]
        let hidden = try prefill(prompt, caches: &caches).rows((prompt.count - 1)..<prompt.count)
        return try decode(from: hidden, caches: &caches, options: options, onToken: onToken)
    }

    /// The decode loop: from the final hidden state of the last fed position, choose, feed, repeat.
    public func decode(
        from hidden: Matrix,
        caches: inout [KVCache],
        options: GenerationOptions,
        onToken: (Int) throws -> Void
    ) throws -> GenerationResult {
        var hidden = hidden
        var tokens: [Int] = []
        while tokens.count < options.maxTokens {
            let token = choose(
                after: hidden,
                mask: options.mask,
                sampling: options.sampling,
                seed: options.seed,
                counter: tokens.count
            )
            tokens.append(token)
            try onToken(token)
            if options.stopIDs.contains(token) { return GenerationResult(tokens: tokens, reason: .stopToken(token)) }
            if tokens.count == options.maxTokens { break }
            guard caches[0].count < configuration.contextLength else {
                return GenerationResult(tokens: tokens, reason: .contextFull)
            }
            var x = try stack.embed([token])
            try stack.forward(&x, rowCounts: [1], caches: &caches)
            hidden = x
        }
        return GenerationResult(tokens: tokens, reason: .maxTokens)
    }

    /// One token from the logits of `hidden` (one row), masked, drawing `CounterRandom(seed, 0, counter)`.
    public func choose(
        after hidden: Matrix,
        mask: LogitMask,
        sampling: SamplingParameters,
        seed: UInt64,
        counter: Int
    ) -> Int {
        Sampler.choose(
            logits: head.logits(hidden).storage,
            mask: mask,
            sampling: sampling,
            seed: seed,
            counter: UInt64(counter)
        )
    }
}

/// Errors in a generation request.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case promptTooLong(tokens: Int, context: Int)

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt is empty"
        case .promptTooLong(let tokens, let context):
            "the prompt is \(tokens) tokens; the model's context is \(context) (max_position_embeddings)"
        }
    }
}
