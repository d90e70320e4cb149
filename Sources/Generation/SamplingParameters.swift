/// How the next token is chosen. `temperature == 0` means greedy (argmax).
public struct SamplingParameters: Sendable, Equatable {
    public var temperature: Float
    /// Keep only the `topK` largest logits; 0 disables.
    public var topK: Int
    /// Keep the smallest set of tokens whose probability reaches `topP`; 1 disables.
    public var topP: Float

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    /// Argmax decoding.
    public static let greedy = SamplingParameters()

    public var isGreedy: Bool { temperature <= 0 }
}
