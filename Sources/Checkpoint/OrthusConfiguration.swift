import Foundation

/// The model configuration read from `config.json` (transformers' Chameleon/Orthus keys).
///
/// HF key names appear only in `CodingKeys`. Every value the engine relies on is checked in `validate()`, so a bad
/// file fails at load with the key named, never later with a shape error.
public struct OrthusConfiguration: Codable, Sendable, Equatable {
    public var architectures: [String]?
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int?
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int?
    public var rmsNormEps: Double?
    public var ropeTheta: Double?
    public var ropeScaling: RopeScaling?
    public var ropeParameters: RopeParameters?
    public var hiddenAct: String?
    public var attentionBias: Bool?
    public var mlpBias: Bool?
    public var swinNorm: Bool?
    public var tieWordEmbeddings: Bool?
    public var imageTokenID: Int?
    public var boiTokenID: Int?
    public var eoiTokenID: Int?
    public var vqConfig: VQConfiguration?

    /// transformers >= 5 writes the RoPE base here instead of `rope_theta`.
    public struct RopeParameters: Codable, Sendable, Equatable {
        public var ropeType: String?
        public var ropeTheta: Double?
        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type"
            case ropeTheta = "rope_theta"
        }
    }

    /// Present only to refuse it clearly: Chameleon uses plain RoPE.
    public struct RopeScaling: Codable, Sendable, Equatable {
        public var type: String?
        public var ropeType: String?
        enum CodingKeys: String, CodingKey {
            case type
            case ropeType = "rope_type"
        }
    }

    enum CodingKeys: String, CodingKey {
        case architectures
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case kvHeadCount = "num_key_value_heads"
        case vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters"
        case hiddenAct = "hidden_act"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case swinNorm = "swin_norm"
        case tieWordEmbeddings = "tie_word_embeddings"
        case imageTokenID = "image_token_id"
        case boiTokenID = "boi_token_id"
        case eoiTokenID = "eoi_token_id"
        case vqConfig = "vq_config"
    }

    // MARK: - Derived values

    /// Key/value heads (grouped-query attention when fewer than `headCount`).
    public var keyValueHeads: Int { kvHeadCount ?? headCount }
    /// Width of one attention head.
    public var headDim: Int { hiddenSize / headCount }
    /// RMSNorm epsilon (Chameleon: 1e-5).
    public var normEps: Float { Float(rmsNormEps ?? 1e-5) }
    /// RoPE base frequency.
    public var ropeBase: Double { ropeParameters?.ropeTheta ?? ropeTheta ?? 10000 }
    /// The longest sequence the model was trained for.
    public var contextLength: Int { maxPositionEmbeddings ?? 4096 }

    // MARK: - Loading

    /// Reads and validates `config.json` at `path`.
    public static func load(path: String) throws -> OrthusConfiguration {
        guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError.fileNotFound(path: path) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CheckpointError.unreadable(path: path, reason: "\(error)")
        }
        let configuration: OrthusConfiguration
        do {
            configuration = try JSONDecoder().decode(OrthusConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw CheckpointError.malformedConfig(path: path, detail: Self.explain(error))
        } catch {
            throw CheckpointError.malformedConfig(path: path, detail: "\(error)")
        }
        try configuration.validate()
        return configuration
    }

    /// Checks every value the engine depends on.
    public func validate() throws {
        func positive(_ value: Int, _ key: String) throws {
            guard value > 0 else {
                throw CheckpointError.invalidConfigValue(key: key, detail: "\(value) is not positive")
            }
        }
        try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size")
        try positive(layerCount, "num_hidden_layers")
        try positive(headCount, "num_attention_heads")
        try positive(keyValueHeads, "num_key_value_heads")
        try positive(vocabSize, "vocab_size")
        try positive(contextLength, "max_position_embeddings")
        guard hiddenSize % headCount == 0 else {
            throw CheckpointError.invalidConfigValue(
                key: "num_attention_heads",
                detail: "\(headCount) heads do not divide hidden_size \(hiddenSize)"
            )
        }
        guard headCount % keyValueHeads == 0 else {
            throw CheckpointError.invalidConfigValue(
                key: "num_key_value_heads",
                detail: "\(keyValueHeads) do not divide \(headCount) attention heads"
            )
        }
        guard headDim % 2 == 0 else {
            throw CheckpointError.invalidConfigValue(key: "hidden_size", detail: "head width \(headDim) is odd (RoPE)")
        }
        guard normEps > 0, normEps.isFinite else {
            throw CheckpointError.invalidConfigValue(key: "rms_norm_eps", detail: "must be a positive number")
        }
        guard ropeBase > 1, ropeBase.isFinite else {
            throw CheckpointError.invalidConfigValue(key: "rope_theta", detail: "\(ropeBase) must be > 1")
        }
        if let scaling = ropeScaling, (scaling.type ?? scaling.ropeType ?? "default") != "default" {
            throw CheckpointError.unsupportedConfig(key: "rope_scaling", detail: "Chameleon uses plain RoPE")
        }
        if let type = ropeParameters?.ropeType, type != "default" {
            throw CheckpointError.unsupportedConfig(key: "rope_parameters", detail: "rope_type '\(type)'")
        }
        if let act = hiddenAct, act != "silu" {
            throw CheckpointError.unsupportedConfig(key: "hidden_act", detail: "'\(act)' (only silu)")
        }
        if attentionBias == true { throw CheckpointError.unsupportedConfig(key: "attention_bias", detail: "true") }
        if mlpBias == true { throw CheckpointError.unsupportedConfig(key: "mlp_bias", detail: "true") }
        if swinNorm == true {
            throw CheckpointError.unsupportedConfig(key: "swin_norm", detail: "the 30B post-norm variant is not served")
        }
        if tieWordEmbeddings == true {
            throw CheckpointError.unsupportedConfig(
                key: "tie_word_embeddings",
                detail: "Chameleon has a separate lm_head"
            )
        }
        for (key, id) in [("image_token_id", imageTokenID), ("boi_token_id", boiTokenID), ("eoi_token_id", eoiTokenID)]
        {
            if let id, !(0..<vocabSize).contains(id) {
                throw CheckpointError.invalidConfigValue(key: key, detail: "\(id) is outside the vocabulary")
            }
        }
        try vqConfig?.validate()
    }

    private static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing key '\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type for '\(path(context))': \(context.debugDescription)"
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "not valid JSON" + (path(context).isEmpty ? "" : " at '\(path(context))'")
                + (underlying.map { ": \($0)" } ?? "")
        @unknown default:
            return "\(error)"
        }
    }
}

/// The VQ-VAE section of `config.json` (`vq_config`), with transformers' defaults for absent keys.
public struct VQConfiguration: Codable, Sendable, Equatable {
    public var embedDim: Int?
    public var codebookSize: Int?
    public var latentChannels: Int?
    public var resolution: Int?
    public var inChannels: Int?
    public var outChannels: Int?
    public var baseChannels: Int?
    public var channelMultiplier: [Int]?
    public var resBlockCount: Int?
    public var attentionResolutions: [Int]?
    public var doubleLatent: Bool?

    enum CodingKeys: String, CodingKey {
        case embedDim = "embed_dim"
        case codebookSize = "num_embeddings"
        case latentChannels = "latent_channels"
        case resolution
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case baseChannels = "base_channels"
        case channelMultiplier = "channel_multiplier"
        case resBlockCount = "num_res_blocks"
        case attentionResolutions = "attn_resolutions"
        case doubleLatent = "double_latent"
    }

    /// Every key absent: transformers' defaults (the Orthus-7B values).
    public init() {}

    /// Chameleon's VQ-VAE, every key written out: 512 pixels, 128 base channels multiplied by 1, 1, 2, 2, 4, two
    /// residual blocks a level, no attention but the middle's, 256-wide latents, 8192 codes.
    public static let chameleon512: VQConfiguration = {
        var vq = VQConfiguration()
        vq.embedDim = 256
        vq.codebookSize = 8192
        vq.latentChannels = 256
        vq.resolution = 512
        vq.inChannels = 3
        vq.outChannels = 3
        vq.baseChannels = 128
        vq.channelMultiplier = [1, 1, 2, 2, 4]
        vq.resBlockCount = 2
        vq.attentionResolutions = []
        vq.doubleLatent = false
        return vq
    }()

    /// Width of one continuous image latent (256 for Orthus-7B).
    public var latentDim: Int { embedDim ?? 256 }
    /// Number of codebook entries, hence of image-token embedding rows (8192).
    public var codes: Int { codebookSize ?? 8192 }
    /// Latent grid side: the resolution divided by 2 per downsampling level.
    public var gridSide: Int {
        let levels = (channelMultiplier ?? [1, 1, 2, 2, 4]).count
        return (resolution ?? 512) >> (levels - 1)
    }
    /// Image patches per image (1024 for Orthus-7B).
    public var patchesPerImage: Int { gridSide * gridSide }

    func validate() throws {
        for (key, value) in [
            ("vq_config.embed_dim", embedDim), ("vq_config.num_embeddings", codebookSize),
            ("vq_config.latent_channels", latentChannels), ("vq_config.resolution", resolution),
            ("vq_config.base_channels", baseChannels), ("vq_config.num_res_blocks", resBlockCount),
        ] {
            if let value, value <= 0 {
                throw CheckpointError.invalidConfigValue(key: key, detail: "\(value) is not positive")
            }
        }
        if let multiplier = channelMultiplier, multiplier.isEmpty || multiplier.contains(where: { $0 <= 0 }) {
            throw CheckpointError.invalidConfigValue(key: "vq_config.channel_multiplier", detail: "\(multiplier)")
        }
        if doubleLatent == true {
            throw CheckpointError.unsupportedConfig(key: "vq_config.double_latent", detail: "true (Orthus uses false)")
        }
        if gridSide <= 0 {
            throw CheckpointError.invalidConfigValue(key: "vq_config.resolution", detail: "too small for the levels")
        }
    }
}
