import Foundation

/// Rotate-half (NeoX) rotary position embedding, as transformers' Chameleon applies it after the qk-norm.
///
/// `inv_freq[i] = 1 / base^(2i/d)`; the angle `pos · inv_freq[i]` is a float32 product, as in the reference, and
/// its cosine and sine are rounded to float32.
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    private let inverseFrequencies: [Float]

    public init(headDim: Int, base: Double) {
        precondition(headDim % 2 == 0, "RoPE needs an even head width, got \(headDim)")
        self.headDim = headDim
        // Two float32 roundings (the power, then its reciprocal), as torch computes `1.0 / base ** (arange/d)`.
        inverseFrequencies = (0..<(headDim / 2)).map { i in
            1 / Float(pow(base, Double(Float(2 * i) / Float(headDim))))
        }
    }

    /// Rotates `heads` consecutive head vectors at `vector` for sequence position `position`, in place:
    /// `x'[i] = x[i]·cos − x[i+d/2]·sin`, `x'[i+d/2] = x[i+d/2]·cos + x[i]·sin`.
    public func apply(_ vector: UnsafeMutablePointer<Float>, heads: Int, position: Int) {
        let half = headDim / 2
        for i in 0..<half {
            let angle = Double(Float(position) * inverseFrequencies[i])
            let c = Float(cos(angle))
            let s = Float(sin(angle))
            for h in 0..<heads {
                let x = vector + h * headDim
                let a = x[i]
                let b = x[i + half]
                x[i] = a * c - b * s
                x[i + half] = b * c + a * s
            }
        }
    }
}
