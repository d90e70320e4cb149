import Checkpoint
import Foundation
import Tensor

/// The Orthus diffusion head: MAR's `SimpleMLPAdaLN` (docs/model.md §3.2), predicting v for a noisy latent `x` at
/// timestep `t` conditioned on the backbone's final hidden state `z`:
///
///     y = time_embed([cos(t·f), sin(t·f)]) + cond_embed(z);  h = input_proj(x)
///     per block: (shift, scale, gate) = adaLN(silu(y)); h += gate · mlp(LN(h)·(1 + scale) + shift)
///     (shift, scale) = final adaLN(silu(y)); v = linear(LN_noaffine(h)·(1 + scale) + shift)
///
/// The time embedding depends only on t and `cond_embed(z)` only on z, so callers compute them once (per step of a
/// schedule, per patch) and the per-step work is `input_proj`, the blocks and the final layer.
public struct DiffusionHead: Sendable {
    public let width: Int
    /// Latent channels (256 for Orthus-7B).
    public let latentDim: Int
    /// Width of the conditioning hidden state (the backbone's hidden size).
    public let conditionDim: Int
    static let frequencyCount = 256

    /// A layer of the head. bf16 weights stay bf16 in memory, as in the backbone (bit-identical results): with a few
    /// images in flight a DDIM step is a few rows, and reading the head's weights is most of its time.
    struct Linear: Sendable {
        let weights: Weights
        let bias: [Float]

        func callAsFunction(_ x: Matrix) -> Matrix { RowInvariant.linear(x, weights: weights, bias: bias) }
    }

    struct Block: Sendable {
        let normWeight: [Float]
        let normBias: [Float]
        let mlp0: Linear
        let mlp2: Linear
        let modulation: Linear
    }

    let time0, time2, condition, input, final, finalModulation: Linear
    let blocks: [Block]

    /// Loads `mlp_head.*`; the width and block count are read from the tensors (they are constructor arguments in the
    /// reference, not config keys), and every shape is checked against them.
    public init(directory: ModelDirectory) throws {
        let c = directory.configuration
        let latent = c.vqConfig?.latentDim ?? 256
        typealias Names = TensorManifest.DiffusionHeadNames
        let probe = try directory.entry(Names.inputProjection + ".weight")
        guard probe.shape.count == 2, probe.shape[1] == latent else {
            throw CheckpointError.shapeMismatch(
                name: probe.name,
                expected: [probe.shape.first ?? 0, latent],
                found: probe.shape
            )
        }
        let w = probe.shape[0]
        let blockCount = Set(
            directory.tensorNames.compactMap { name -> Int? in
                guard name.hasPrefix(Names.blockPrefix) else { return nil }
                return Int(name.dropFirst(Names.blockPrefix.count).prefix { $0 != "." })
            }
        ).count
        func linear(_ name: String, _ outputs: Int, _ inputs: Int) throws -> Linear {
            Linear(
                weights: try directory.loadWeights(name + ".weight", shape: [outputs, inputs]),
                bias: try directory.load(name + ".bias", shape: [outputs]).values
            )
        }
        width = w
        latentDim = latent
        conditionDim = c.hiddenSize
        time0 = try linear(Names.time0, w, Self.frequencyCount)
        time2 = try linear(Names.time2, w, w)
        condition = try linear(Names.condition, w, c.hiddenSize)
        input = try linear(Names.inputProjection, w, latent)
        final = try linear(Names.final, latent, w)
        finalModulation = try linear(Names.finalModulation, 2 * w, w)
        blocks = try (0..<blockCount).map { i in
            let names = Names.block(i)
            return Block(
                normWeight: try directory.load(names.norm + ".weight", shape: [w]).values,
                normBias: try directory.load(names.norm + ".bias", shape: [w]).values,
                mlp0: try linear(names.mlp0, w, w),
                mlp2: try linear(names.mlp2, w, w),
                modulation: try linear(names.modulation, 3 * w, w)
            )
        }
    }

    /// `time_embed(t)` for each timestep: `[timesteps.count, width]`.
    public func timeEmbeddings(_ timesteps: [Int]) -> Matrix {
        let half = Self.frequencyCount / 2
        // As torch: exp(−ln(10000) · i / half) in float32, then t · freq in float32.
        let frequencies: [Float] = (0..<half).map { i in
            Float(exp(Double(Float(-log(10000.0)) * Float(i) / Float(half))))
        }
        var features = Matrix(rows: timesteps.count, columns: Self.frequencyCount)
        for (row, t) in timesteps.enumerated() {
            for i in 0..<half {
                let angle = Double(Float(t) * frequencies[i])
                features.storage[row * Self.frequencyCount + i] = Float(cos(angle))
                features.storage[row * Self.frequencyCount + half + i] = Float(sin(angle))
            }
        }
        var hidden = time0(features)
        Self.silu(&hidden)
        return time2(hidden)
    }

    /// `cond_embed(z)` for each row of final hidden states `[rows, hidden]`.
    public func conditionEmbeddings(_ z: Matrix) -> Matrix {
        precondition(z.columns == conditionDim, "condition width \(z.columns) ≠ \(conditionDim)")
        return condition(z)
    }

    /// v-predictions `[rows, latent]` for noisy latents `x`, given each row's time and condition embeddings.
    public func predict(x: Matrix, time: Matrix, condition: Matrix) -> Matrix {
        precondition(x.rows == time.rows && x.rows == condition.rows, "row counts differ")
        precondition(x.columns == latentDim, "latent width \(x.columns) ≠ \(latentDim)")
        var y = time
        for i in y.storage.indices { y.storage[i] += condition.storage[i] }
        Self.silu(&y)
        var h = input(x)
        for block in blocks {
            let modulation = block.modulation(y)
            var u = h
            Self.layerNorm(&u, weight: block.normWeight, bias: block.normBias)
            Self.modulate(&u, modulation, shiftChunk: 0, scaleChunk: 1)
            var inner = block.mlp0(u)
            Self.silu(&inner)
            let update = block.mlp2(inner)
            for r in 0..<h.rows {
                for c in 0..<width {
                    h.storage[r * width + c] +=
                        modulation.storage[r * 3 * width + 2 * width + c] * update.storage[r * width + c]
                }
            }
        }
        let modulation = finalModulation(y)
        Self.layerNorm(&h, weight: nil, bias: nil)
        Self.modulate(&h, modulation, shiftChunk: 0, scaleChunk: 1)
        return final(h)
    }

    // MARK: - Row operations

    static func silu(_ m: inout Matrix) {
        for i in m.storage.indices { m.storage[i] = m.storage[i] / (1 + exp(-m.storage[i])) }
    }

    /// LayerNorm over each row (eps 1e-6), with an optional affine.
    static func layerNorm(_ m: inout Matrix, weight: [Float]?, bias: [Float]?) {
        let (rows, width) = (m.rows, m.columns)
        m.storage.withUnsafeMutableBufferPointer {
            RowKernels.layerNorm($0.baseAddress!, groups: rows, width: width, eps: 1e-6)
        }
        guard let weight, let bias else { return }
        for r in 0..<rows {
            for c in 0..<width { m.storage[r * width + c] = m.storage[r * width + c] * weight[c] + bias[c] }
        }
    }

    /// `x · (1 + scale) + shift`, with shift and scale taken from chunks of each modulation row.
    static func modulate(_ x: inout Matrix, _ modulation: Matrix, shiftChunk: Int, scaleChunk: Int) {
        let width = x.columns
        for r in 0..<x.rows {
            let base = r * modulation.columns
            for c in 0..<width {
                let shift = modulation.storage[base + shiftChunk * width + c]
                let scale = modulation.storage[base + scaleChunk * width + c]
                x.storage[r * width + c] = x.storage[r * width + c] * (1 + scale) + shift
            }
        }
    }
}
