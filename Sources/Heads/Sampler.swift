import Foundation
import Generation

/// A counter-based random source: the value for (seed, stream, counter) is a pure function of the three.
///
/// Token `n` of sequence `s` draws `uniform(seed, s, n)`, so the choice does not depend on which process sampled
/// it or on what else was in the batch. Mixing is SplitMix64's finalizer applied over the key words.
public enum CounterRandom {
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits for the key.
    public static func bits(seed: UInt64, stream: UInt64, counter: UInt64) -> UInt64 {
        mix(mix(mix(seed) ^ stream) ^ counter)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public static func uniform(seed: UInt64, stream: UInt64, counter: UInt64) -> Double {
        Double(bits(seed: seed, stream: stream, counter: counter) >> 11) * 0x1.0p-53
    }
}

/// Chooses a token from a row of logits: temperature, then top-k, then top-p, then one draw, in the order
/// transformers applies its warpers.
public enum Sampler {
    /// Picks a token from `logits` (already masked). `uniform` is the draw in [0, 1) used when sampling.
    public static func choose(_ logits: [Float], parameters: SamplingParameters, uniform: Double) -> Int {
        if parameters.isGreedy { return argmax(logits) }
        let scaled = logits.map { $0 / parameters.temperature }
        // Candidates in descending logit order; stable so equal logits keep id order.
        var order = scaled.indices.filter { scaled[$0] > -.infinity }
        guard !order.isEmpty else { return argmax(logits) }
        order.sort { scaled[$0] > scaled[$1] || (scaled[$0] == scaled[$1] && $0 < $1) }
        if parameters.topK > 0, parameters.topK < order.count {
            // Values tied with the k-th are kept, as transformers' top-k (which removes scores < the k-th) does.
            let threshold = scaled[order[parameters.topK - 1]]
            order = order.filter { scaled[$0] >= threshold }
        }
        let maximum = scaled[order[0]]
        var probabilities = order.map { Double(exp(scaled[$0] - maximum)) }
        var total = probabilities.reduce(0, +)
        if parameters.topP < 1 {
            var cumulative = 0.0
            var keep = 0
            for p in probabilities {
                cumulative += p / total
                keep += 1
                if cumulative >= Double(parameters.topP) { break }
            }
            order.removeSubrange(keep...)
            probabilities.removeSubrange(keep...)
            total = probabilities.reduce(0, +)
        }
        var target = uniform * total
        for (index, p) in zip(order, probabilities) {
            target -= p
            if target < 0 { return index }
        }
        return order[order.count - 1]
    }

    /// The token for one row of logits: the mask, then a draw keyed by (seed, stream 0, counter). Every process that
    /// chooses a token goes through here, so a seeded run gives the same tokens on any topology.
    public static func choose(
        logits: [Float],
        mask: LogitMask,
        sampling: SamplingParameters,
        seed: UInt64,
        counter: UInt64
    ) -> Int {
        var logits = logits
        logits.withUnsafeMutableBufferPointer { mask.apply(to: $0) }
        return choose(
            logits,
            parameters: sampling,
            uniform: CounterRandom.uniform(seed: seed, stream: 0, counter: counter)
        )
    }

    /// The index of the largest value; the first one on ties (as `torch.argmax`).
    public static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
