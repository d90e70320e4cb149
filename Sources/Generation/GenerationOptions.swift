/// Options of one text generation.
public struct GenerationOptions: Sendable, Equatable {
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var seed: UInt64
    /// Applied to every step's logits.
    public var mask: LogitMask
    /// Generation ends after producing one of these (the stop token is returned but not decoded as text).
    public var stopIDs: Set<Int>

    public init(
        maxTokens: Int,
        sampling: SamplingParameters = .greedy,
        seed: UInt64 = 0,
        mask: LogitMask = .none,
        stopIDs: Set<Int> = []
    ) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.seed = seed
        self.mask = mask
        self.stopIDs = stopIDs
    }
}

/// Everything needed to choose one row's token exactly as the engine would: the row's sampling parameters and mask,
/// and the key (seed, counter) of its random draw. The scheduler asks for these and the LM-head pool answers them.
public struct TokenChoice: Sendable, Equatable {
    public var sequenceID: UInt64
    public var sampling: SamplingParameters
    public var seed: UInt64
    /// The draw counter: the number of tokens the sequence has generated so far.
    public var counter: UInt64
    public var mask: LogitMask

    public init(sequenceID: UInt64, sampling: SamplingParameters, seed: UInt64, counter: UInt64, mask: LogitMask) {
        self.sequenceID = sequenceID
        self.sampling = sampling
        self.seed = seed
        self.counter = counter
        self.mask = mask
    }
}
