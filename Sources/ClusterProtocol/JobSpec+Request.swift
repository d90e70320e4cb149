import Generation
import Wire

extension JobSpec {
    private static let modes: [(JobMode, GenerationMode)] = [
        (.text, .text), (.textToImage, .textToImage), (.imageToText, .imageToText), (.interleaved, .interleaved),
    ]

    /// The request a client's job spec states (max_tokens 0: the mode's default).
    public var request: GenerationRequest {
        GenerationRequest(
            mode: Self.modes.first { $0.0 == mode }!.1,
            prompt: prompt,
            maxTokens: maxTokens == 0 ? nil : maxTokens,
            sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP),
            seed: seed,
            guidance: guidance,
            steps: steps
        )
    }

    /// The job spec that sends `request` to a cluster.
    public init(_ request: GenerationRequest) {
        self.init(
            mode: Self.modes.first { $0.1 == request.mode }!.0,
            prompt: request.prompt,
            maxTokens: request.maxTokens ?? 0,
            temperature: request.sampling.temperature,
            topK: request.sampling.topK,
            topP: request.sampling.topP,
            seed: request.seed,
            guidance: request.guidance,
            steps: request.steps
        )
    }
}
