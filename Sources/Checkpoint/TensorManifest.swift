/// The tensors a component of the model must have, by name and shape, derived from the configuration.
///
/// HF checkpoint key names live here and nowhere else.
public struct TensorManifest: Sendable {
    public let configuration: OrthusConfiguration

    public init(_ configuration: OrthusConfiguration) { self.configuration = configuration }

    public static let embeddings = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"
    public static let codebookIn = "model.codebook_in.weight"

    /// The diffusion head (MAR's `SimpleMLPAdaLN`): each name is a linear layer's or norm's prefix, to which
    /// `.weight` and `.bias` are added.
    public enum DiffusionHeadNames {
        public static let prefix = "mlp_head."
        public static let blockPrefix = "mlp_head.res_blocks."
        public static let inputProjection = "mlp_head.input_proj"
        public static let time0 = "mlp_head.time_embed.mlp.0"
        public static let time2 = "mlp_head.time_embed.mlp.2"
        public static let condition = "mlp_head.cond_embed"
        public static let final = "mlp_head.final_layer.linear"
        public static let finalModulation = "mlp_head.final_layer.adaLN_modulation.1"

        /// Residual block `i`: its layer norm, its two-layer MLP and its adaLN modulation.
        public static func block(_ i: Int) -> (norm: String, mlp0: String, mlp2: String, modulation: String) {
            let p = blockPrefix + "\(i)."
            return (p + "in_ln", p + "mlp.0", p + "mlp.2", p + "adaLN_modulation.1")
        }
    }

    /// The VQ-VAE (`model.vqmodel.*`, the Chameleon VQGAN layout): the encoder's and decoder's layers sit under their
    /// prefixes with the VQGAN's own relative names.
    public enum VQNames {
        public static let prefix = "model.vqmodel."
        public static let encoder = "model.vqmodel.encoder."
        public static let decoder = "model.vqmodel.decoder."
        public static let quantConv = "model.vqmodel.quant_conv"
        public static let postQuantConv = "model.vqmodel.post_quant_conv"
    }

    /// Whether the tensor is a linear layer's weight matrix, which the engine packs for its kernels
    /// (`ModelDirectory.loadWeights`).
    public static func isProduct(_ entry: TensorEntry) -> Bool {
        guard entry.shape.count == 2 else { return false }
        switch Component(tensorName: entry.name) {
        case .lmHead, .diffusionHead: return true
        case .layer(let index): return LayerNames(index).products.contains(entry.name)
        default: return false
        }
    }

    /// The names of one decoder layer's tensors, keyed by role.
    public struct LayerNames: Sendable {
        public let inputNorm, q, k, v, o, qNormWeight, qNormBias, kNormWeight, kNormBias, postNorm, gate, up,
            down: String

        init(_ i: Int) {
            let p = "model.layers.\(i)."
            inputNorm = p + "input_layernorm.weight"
            q = p + "self_attn.q_proj.weight"
            k = p + "self_attn.k_proj.weight"
            v = p + "self_attn.v_proj.weight"
            o = p + "self_attn.o_proj.weight"
            qNormWeight = p + "self_attn.q_norm.weight"
            qNormBias = p + "self_attn.q_norm.bias"
            kNormWeight = p + "self_attn.k_norm.weight"
            kNormBias = p + "self_attn.k_norm.bias"
            postNorm = p + "post_attention_layernorm.weight"
            gate = p + "mlp.gate_proj.weight"
            up = p + "mlp.up_proj.weight"
            down = p + "mlp.down_proj.weight"
        }

        /// The matrix-product weights (loaded with `loadWeights`); the rest are norms.
        public var products: [String] { [q, k, v, o, gate, up, down] }

        /// The products as the layer holds them: q, k and v stacked into one matrix, gate and up into another.
        public var stacks: [[String]] { [[q, k, v], [o], [gate, up], [down]] }
    }

    public func layerNames(_ index: Int) -> LayerNames { LayerNames(index) }

    /// Expected shapes of decoder layer `index`.
    public func layer(_ index: Int) -> [String: [Int]] {
        let c = configuration
        let n = LayerNames(index)
        let kv = c.keyValueHeads * c.headDim
        return [
            n.inputNorm: [c.hiddenSize], n.postNorm: [c.hiddenSize],
            n.q: [c.hiddenSize, c.hiddenSize], n.k: [kv, c.hiddenSize], n.v: [kv, c.hiddenSize],
            n.o: [c.hiddenSize, c.hiddenSize],
            n.qNormWeight: [c.headCount, c.headDim], n.qNormBias: [c.headCount, c.headDim],
            n.kNormWeight: [c.keyValueHeads, c.headDim], n.kNormBias: [c.keyValueHeads, c.headDim],
            n.gate: [c.intermediateSize, c.hiddenSize], n.up: [c.intermediateSize, c.hiddenSize],
            n.down: [c.hiddenSize, c.intermediateSize],
        ]
    }

    /// The token embedding table.
    public var embeddingShape: [Int] { [configuration.vocabSize, configuration.hiddenSize] }
    /// The LM head.
    public var lmHeadShape: [Int] { [configuration.vocabSize, configuration.hiddenSize] }
    /// The final RMSNorm.
    public var finalNormShape: [Int] { [configuration.hiddenSize] }
}

/// Which part of the model a tensor belongs to, for reports (`orthus inspect`).
public enum Component: Hashable, Sendable, Comparable {
    case embeddings
    case layer(Int)
    case finalNorm
    case lmHead
    case diffusionHead
    case vqEncoder
    case vqDecoder
    case other

    /// Classifies a checkpoint tensor name.
    public init(tensorName name: String) {
        if name == TensorManifest.embeddings || name == TensorManifest.codebookIn {
            self = .embeddings
        } else if name.hasPrefix("model.layers."), let index = Int(name.split(separator: ".")[2]) {
            self = .layer(index)
        } else if name == TensorManifest.finalNorm {
            self = .finalNorm
        } else if name == TensorManifest.lmHead {
            self = .lmHead
        } else if name.hasPrefix(TensorManifest.DiffusionHeadNames.prefix) {
            self = .diffusionHead
        } else if name.hasPrefix(TensorManifest.VQNames.decoder)
            || name.hasPrefix(TensorManifest.VQNames.postQuantConv + ".")
        {
            self = .vqDecoder
        } else if name.hasPrefix(TensorManifest.VQNames.prefix) {
            self = .vqEncoder
        } else {
            self = .other
        }
    }

    public var label: String {
        switch self {
        case .embeddings: "embeddings (embed_tokens, codebook_in)"
        case .layer(let i): "layer \(i)"
        case .finalNorm: "final norm"
        case .lmHead: "LM head"
        case .diffusionHead: "diffusion head (mlp_head)"
        case .vqEncoder: "VQ-VAE encoder (+quant_conv, codebook)"
        case .vqDecoder: "VQ-VAE decoder (+post_quant_conv)"
        case .other: "other"
        }
    }
}
