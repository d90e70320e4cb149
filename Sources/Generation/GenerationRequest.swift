/// What is asked of the model.
public enum GenerationMode: Sendable, Equatable, CaseIterable {
    case text
    case textToImage
    /// A question about a picture: the picture travels beside the request and is encoded before the job starts.
    case imageToText
    case interleaved
}

/// One request, as a client states it: the same values whether it runs in one process or on a cluster.
public struct GenerationRequest: Sendable, Equatable {
    public var mode: GenerationMode
    public var prompt: String
    /// Text modes: tokens at most; interleaved: generated positions at most (patches included). `nil`: the mode's
    /// default (256 tokens for text, the model's context for interleaved answers).
    public var maxTokens: Int?
    public var sampling: SamplingParameters
    public var seed: UInt64
    /// Image modes: the classifier-free guidance scale (nil: the model's default, `JobPlanner.guidance`) and DDIM
    /// steps.
    public var guidance: Float?
    public var steps: Int

    public init(
        mode: GenerationMode,
        prompt: String,
        maxTokens: Int? = nil,
        sampling: SamplingParameters = .greedy,
        seed: UInt64 = 0,
        guidance: Float? = nil,
        steps: Int = 100
    ) {
        self.mode = mode
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.seed = seed
        self.guidance = guidance
        self.steps = steps
    }

    /// Interleaved answers sample their text (transformers' defaults: temperature 1, top-k 50); the other modes are
    /// greedy unless asked otherwise.
    public static func defaultSampling(_ mode: GenerationMode) -> SamplingParameters {
        mode == .interleaved ? SamplingParameters(temperature: 1, topK: 50) : .greedy
    }
}

/// Why a request cannot be planned; the text names the field.
public struct RequestError: Error, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
