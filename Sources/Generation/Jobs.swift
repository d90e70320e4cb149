/// A text-generation job as the coordinator schedules it.
public struct TextJob: Sendable, Equatable {
    public var id: UInt64
    /// The prompt; image-to-text prompts carry the encoder's latents at the `<image>` positions.
    public var prompt: [StageInput]
    public var options: GenerationOptions

    public init(id: UInt64, prompt: [StageInput], options: GenerationOptions) {
        self.id = id
        self.prompt = prompt
        self.options = options
    }
}

/// A text-to-image job: a cond and an uncond sequence (each ending in BOI) sampled with classifier-free guidance.
public struct ImageJob: Sendable, Equatable {
    public var id: UInt64
    public var prompt: [Int]
    public var nullPrompt: [Int]
    public var patches: Int
    public var guidance: Float
    public var steps: Int
    public var seed: UInt64

    public init(id: UInt64, prompt: [Int], nullPrompt: [Int], patches: Int, guidance: Float, steps: Int, seed: UInt64) {
        self.id = id
        self.prompt = prompt
        self.nullPrompt = nullPrompt
        self.patches = patches
        self.guidance = guidance
        self.steps = steps
        self.seed = seed
    }
}

/// An interleaved job: text on the cond sequence; each BOI opens a fresh uncond sequence and an image sampled with
/// CFG, after which EOI is forced and text continues (docs/model.md §4.3).
public struct InterleavedJob: Sendable, Equatable {
    public var id: UInt64
    public var prompt: [Int]
    /// The unconditional prompt of every image, ending in BOI.
    public var nullPrompt: [Int]
    /// Generated positions at most: text, BOI, patches and EOI all count.
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var seed: UInt64
    /// The text-only mask; BOI is lifted from it while an image still fits.
    public var mask: LogitMask
    public var stopIDs: Set<Int>
    public var boi: Int
    public var eoi: Int
    public var patches: Int
    public var guidance: Float
    public var steps: Int

    public init(
        id: UInt64,
        prompt: [Int],
        nullPrompt: [Int],
        maxTokens: Int,
        sampling: SamplingParameters,
        seed: UInt64,
        mask: LogitMask,
        stopIDs: Set<Int>,
        boi: Int,
        eoi: Int,
        patches: Int,
        guidance: Float,
        steps: Int
    ) {
        self.id = id
        self.prompt = prompt
        self.nullPrompt = nullPrompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.seed = seed
        self.mask = mask
        self.stopIDs = stopIDs
        self.boi = boi
        self.eoi = eoi
        self.patches = patches
        self.guidance = guidance
        self.steps = steps
    }
}

/// One patch for the diffusion pool: the final hidden states of its CFG pair, its guidance and steps, and the key
/// of its initial noise.
public struct PatchWork: Sendable, Equatable {
    public var job: UInt64
    public var key: PatchKey
    public var condition: [Float]
    public var unconditional: [Float]
    public var guidance: Float
    public var steps: Int

    public init(job: UInt64, key: PatchKey, condition: [Float], unconditional: [Float], guidance: Float, steps: Int) {
        self.job = job
        self.key = key
        self.condition = condition
        self.unconditional = unconditional
        self.guidance = guidance
        self.steps = steps
    }
}

/// A finished job's answer.
public struct JobAnswer: Sendable, Equatable {
    /// Every token chosen or forced, in order, as streamed (stop ids included); empty for text-to-image.
    public var tokens: [Int]
    /// Interleaved: text runs (stop ids left out) and images in order; text-to-image: its one image; text: empty.
    public var pieces: [AnswerPiece]
    public var reason: FinishReason

    public init(tokens: [Int], pieces: [AnswerPiece], reason: FinishReason) {
        self.tokens = tokens
        self.pieces = pieces
        self.reason = reason
    }
}
