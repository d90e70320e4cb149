import Generation

extension TokenChoice {
    /// The token for this row's logits.
    public func choose(_ logits: [Float]) -> Int {
        Sampler.choose(logits: logits, mask: mask, sampling: sampling, seed: seed, counter: counter)
    }
}
