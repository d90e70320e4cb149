import Foundation

/// The DDIM sampler configuration Orthus uses: diffusers' `DDIMScheduler(beta_schedule="scaled_linear",
/// beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000, prediction_type="v_prediction",
/// set_alpha_to_one=True, timestep_spacing="trailing", rescale_betas_zero_snr=True, clip_sample=False)`, eta 0.
///
/// The float32 operations follow torch's order (f32 `linspace` as ATen computes it, `cumprod` accumulated in double as
/// the CPU kernel does) so ᾱ matches diffusers to the last bit or two; ᾱ[999] is exactly 0.
public struct DDIMSchedule: Sendable, Equatable {
    public static let trainSteps = 1000

    /// ᾱ_t for t in 0..<1000.
    public let alphasCumprod: [Float]
    /// The timesteps visited, from noisiest to cleanest (100 steps: 999, 989, …, 9).
    public let timesteps: [Int]
    /// How far each step moves: `1000 / steps` (integer division, as diffusers computes the previous timestep).
    public let stride: Int

    /// The schedule for `steps` inference steps (Orthus: 100).
    public init(steps: Int) {
        precondition(steps > 0 && steps <= Self.trainSteps, "DDIM steps must be in 1...1000, got \(steps)")
        alphasCumprod = Self.zeroTerminalSNRAlphasCumprod()
        stride = Self.trainSteps / steps
        // "trailing": round(arange(1000, 0, -1000/steps)) - 1, rounding half to even as numpy does.
        let ratio = Double(Self.trainSteps) / Double(steps)
        timesteps = (0..<steps).map { i in
            Int((Double(Self.trainSteps) - Double(i) * ratio).rounded(.toNearestOrEven)) - 1
        }
    }

    /// One DDIM update (eta 0) from `x` at `timestep` given the v-prediction `v`, in place:
    /// `x0 = √ᾱ·x − √(1−ᾱ)·v`, `ε = √ᾱ·v + √(1−ᾱ)·x`, `x ← √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε`, with ᾱ_prev = 1 past t = 0.
    public func step(_ x: inout [Float], v: [Float], timestep: Int) {
        let a = alphasCumprod[timestep]
        let previous = timestep - stride
        let aPrevious: Float = previous >= 0 ? alphasCumprod[previous] : 1
        let b = 1 - a
        let (sa, sb) = (a.squareRoot(), b.squareRoot())
        let (sap, sbp) = (aPrevious.squareRoot(), (1 - aPrevious).squareRoot())
        for i in x.indices {
            let x0 = sa * x[i] - sb * v[i]
            let epsilon = sa * v[i] + sb * x[i]
            x[i] = sap * x0 + sbp * epsilon
        }
    }

    /// scaled_linear betas rescaled to zero terminal SNR, then ᾱ = cumprod(1 − β).
    static func zeroTerminalSNRAlphasCumprod() -> [Float] {
        let n = trainSteps
        let start = Float(0.00085.squareRoot())
        let end = Float(0.012.squareRoot())
        let step = (end - start) / Float(n - 1)
        let halfway = n / 2
        let betas: [Float] = (0..<n).map { i in
            let root = i < halfway ? start + step * Float(i) : end - step * Float(n - i - 1)
            return root * root
        }
        func cumprod(_ values: [Float]) -> [Float] {
            var product = 1.0
            return values.map { value in
                product *= Double(value)
                return Float(product)
            }
        }
        var roots = cumprod(betas.map { 1 - $0 }).map { $0.squareRoot() }
        let (first, last) = (roots[0], roots[n - 1])
        let factor = first / (first - last)
        roots = roots.map { ($0 - last) * factor }
        let bars = roots.map { $0 * $0 }
        let alphas = [bars[0]] + (1..<n).map { bars[$0] / bars[$0 - 1] }
        let rescaledBetas = alphas.map { 1 - $0 }
        return cumprod(rescaledBetas.map { 1 - $0 })
    }
}
