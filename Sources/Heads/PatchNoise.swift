import Foundation

/// Initial DDIM noise for image patches.
///
/// Patch `i` of image `k` of a job draws from a counter-based generator keyed by (seed, k, i), so its noise does not
/// depend on batching, on which worker sampled it, or on what ran before (README: "How the cluster works", Determinism). Standard normal
/// values come from Box–Muller over `CounterRandom` draws.
public enum PatchNoise {
    /// `count` standard normal values for patch `patch` of image `image`.
    public static func gaussian(seed: UInt64, image: Int, patch: Int, count: Int) -> [Float] {
        let stream = UInt64(truncatingIfNeeded: image) << 32 | UInt64(truncatingIfNeeded: patch) & 0xFFFF_FFFF
        var values: [Float] = []
        values.reserveCapacity(count + 1)
        var pair: UInt64 = 0
        while values.count < count {
            let u1 = 1 - CounterRandom.uniform(seed: seed, stream: stream, counter: 2 * pair)  // (0, 1]: log is finite
            let u2 = CounterRandom.uniform(seed: seed, stream: stream, counter: 2 * pair + 1)
            let radius = (-2 * log(u1)).squareRoot()
            values.append(Float(radius * cos(2 * Double.pi * u2)))
            values.append(Float(radius * sin(2 * Double.pi * u2)))
            pair += 1
        }
        return Array(values.prefix(count))
    }
}
