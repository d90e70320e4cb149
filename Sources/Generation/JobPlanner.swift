import Checkpoint
import Tensor
import Tokenizer

/// Turns a request into the scheduler's job from the model's configuration and tokenizer alone (never its weights):
/// the prompts (`BOS prompt SEP`, BOI for images), the reference's unconditional prompts, special ids, masks, stop
/// ids and defaults. One process and the cluster plan every job here, so both run the same job.
public struct JobPlanner: Sendable {
    public let configuration: OrthusConfiguration
    public let tokenizer: Tokenizer
    public let special: SpecialTokens
    /// No image codes, BOI or EOI, and no id the tokenizer cannot spell.
    public let textMask: LogitMask
    /// Patches per image and the width of one latent.
    public let patches: Int
    public let latentDim: Int

    /// The unconditional prompts of the reference: text-to-image, and every image of an interleaved answer.
    public static let imageNullPrompt = "Generate an image."
    public static let interleavedNullPrompt = "generate images"

    /// The model's guidance scales where a request gives none.
    public let defaults: GenerationDefaults

    public init(configuration: OrthusConfiguration, tokenizer: Tokenizer, defaults: GenerationDefaults = .orthus) {
        self.configuration = configuration
        self.tokenizer = tokenizer
        self.defaults = defaults
        special = SpecialTokens.resolve(configuration, tokenizer)
        var mask = LogitMask.textOnly(special)
        // A checkpoint's vocab_size may exceed what its tokenizer can spell.
        if tokenizer.idCount < configuration.vocabSize {
            mask.banned.append(tokenizer.idCount..<configuration.vocabSize)
        }
        textMask = mask
        let vq = configuration.vqConfig ?? VQConfiguration()
        patches = vq.patchesPerImage
        latentDim = vq.latentDim
    }

    public init(directory: ModelDirectory) throws {
        self.init(
            configuration: directory.configuration,
            tokenizer: try Tokenizer(path: directory.tokenizerPath),
            defaults: directory.generationDefaults
        )
    }

    public var hiddenSize: Int { configuration.hiddenSize }
    public var layerCount: Int { configuration.layerCount }
    public var contextLength: Int { configuration.contextLength }

    /// The Orthus text prompt: `BOS + BPE(prompt) + SEP`.
    public func promptIDs(_ prompt: String) throws -> [Int] {
        [special.bos] + (try tokenizer.encode(prompt)) + [special.sep]
    }

    /// The request's guidance scale, or the model's default for its mode.
    public func guidance(_ request: GenerationRequest) -> Float {
        request.guidance ?? (request.mode == .interleaved ? defaults.interleavedGuidance : defaults.imageGuidance)
    }

    /// The token budget: the request's, or the mode's default (256 for text, the context for interleaved answers).
    public func maxTokens(_ request: GenerationRequest) -> Int {
        request.maxTokens ?? (request.mode == .interleaved ? contextLength : 256)
    }

    /// The longest prompt, in bytes, worth tokenizing: no token of these tokenizers spells more than a few dozen
    /// bytes, so a longer prompt cannot fit the context anyway, and tokenizing it would only cost time.
    public var maxPromptBytes: Int { 64 * contextLength }

    /// Checks a request's values; the error names the field.
    public func validate(_ request: GenerationRequest) throws(RequestError) {
        guard request.prompt.utf8.count <= maxPromptBytes else {
            throw RequestError(
                "the prompt is \(request.prompt.utf8.count) bytes; at most \(maxPromptBytes) can fit the context of \(contextLength) tokens"
            )
        }
        if let max = request.maxTokens { guard max > 0 else { throw RequestError("max_tokens must be positive") } }
        let sampling = request.sampling
        guard sampling.temperature >= 0, sampling.temperature.isFinite else {
            throw RequestError("temperature must be >= 0")
        }
        guard sampling.topK >= 0 else { throw RequestError("top_k must not be negative") }
        guard sampling.topP > 0, sampling.topP <= 1 else { throw RequestError("top_p must be in (0, 1]") }
        if request.mode == .textToImage || request.mode == .interleaved {
            guard (1...1000).contains(request.steps) else { throw RequestError("steps must be in 1...1000") }
            guard guidance(request).isFinite else { throw RequestError("guidance must be a number") }
        }
    }

    /// The job for a request. An image-to-text request is planned with `imageQuestionJob` once its picture is
    /// encoded.
    public func plan(id: UInt64, _ request: GenerationRequest) throws -> PlannedJob {
        try validate(request)
        switch request.mode {
        case .text:
            return .text(
                TextJob(id: id, prompt: try promptIDs(request.prompt).map(StageInput.token), options: options(request))
            )
        case .textToImage:
            return .image(
                ImageJob(
                    id: id,
                    prompt: try promptIDs(request.prompt) + [special.boi],
                    nullPrompt: try promptIDs(Self.imageNullPrompt) + [special.boi],
                    patches: patches,
                    guidance: guidance(request),
                    steps: request.steps,
                    seed: request.seed
                )
            )
        case .interleaved:
            return .interleaved(
                InterleavedJob(
                    id: id,
                    prompt: try promptIDs(request.prompt),
                    nullPrompt: try promptIDs(Self.interleavedNullPrompt) + [special.boi],
                    maxTokens: maxTokens(request),
                    sampling: request.sampling,
                    seed: request.seed,
                    mask: textMask,
                    stopIDs: [special.sep, special.eos],
                    boi: special.boi,
                    eoi: special.eoi,
                    patches: patches,
                    guidance: guidance(request),
                    steps: request.steps
                )
            )
        case .imageToText:
            throw RequestError("an image-to-text job is planned once its picture is encoded")
        }
    }

    /// Image to text, once the picture is encoded to `latents` (one row per patch, raster order).
    public func imageQuestionJob(id: UInt64, _ request: GenerationRequest, latents: Matrix) throws -> PlannedJob {
        try validate(request)
        guard latents.rows == patches, latents.columns == latentDim else {
            throw RequestError(
                "encoded picture is \(latents.rows)x\(latents.columns); expected \(patches)x\(latentDim)"
            )
        }
        return .text(
            TextJob(
                id: id,
                prompt: try imageQuestionInputs(latents: latents, question: request.prompt),
                options: options(request)
            )
        )
    }

    /// The prompt `BOS BOI <latent>×n EOI BPE(question) SEP`: the encoder's latents at the `<image>` positions.
    public func imageQuestionInputs(latents: Matrix, question: String) throws -> [StageInput] {
        var inputs: [StageInput] = [.token(special.bos), .token(special.boi)]
        for row in 0..<latents.rows {
            inputs.append(.latent(Array(latents.storage[(row * latents.columns)..<((row + 1) * latents.columns)])))
        }
        inputs.append(.token(special.eoi))
        inputs += try tokenizer.encode(question).map(StageInput.token)
        inputs.append(.token(special.sep))
        return inputs
    }

    /// Text modes: the text-only mask, stops on SEP or EOS.
    func options(_ request: GenerationRequest) -> GenerationOptions {
        GenerationOptions(
            maxTokens: maxTokens(request),
            sampling: request.sampling,
            seed: request.seed,
            mask: textMask,
            stopIDs: [special.sep, special.eos]
        )
    }
}

/// A job ready for the scheduler.
public enum PlannedJob: Sendable, Equatable {
    case text(TextJob)
    case image(ImageJob)
    case interleaved(InterleavedJob)

    public var id: UInt64 {
        switch self {
        case .text(let job): job.id
        case .image(let job): job.id
        case .interleaved(let job): job.id
        }
    }

    /// The KV positions the job can hold at most on each stage at once: every position of every sequence it feeds
    /// (a text sequence to its token limit; both sequences of a CFG pair with all their patches; an interleaved
    /// answer's text to its limit, with the unconditional sequence of one image beside it).
    public var kvPositions: Int {
        switch self {
        case .text(let job): job.prompt.count + job.options.maxTokens
        case .image(let job): job.prompt.count + job.nullPrompt.count + 2 * (job.patches + 1)
        case .interleaved(let job): job.prompt.count + job.maxTokens + job.nullPrompt.count + job.patches + 1
        }
    }
}

extension Scheduler {
    /// Accepts a planned job of any kind and schedules what can run.
    public mutating func submit(_ job: PlannedJob) throws(Refusal) -> [Directive] {
        switch job {
        case .text(let text): try submit(text)
        case .image(let image): try submit(image)
        case .interleaved(let interleaved): try submit(interleaved)
        }
    }
}
