import Checkpoint

/// What the planner needs of a model: each layer's memory, what the first and last stages hold besides, the head
/// pools' memory, KV bytes per position, and its context. Read from the checkpoint's headers (no weights).
public struct ModelCosts: Sendable, Equatable {
    public var layerBytes: [Int]
    /// Stage 0 holds the embeddings; the last stage the final norm.
    public var embeddingBytes: Int
    public var finalNormBytes: Int
    public var lmHeadBytes: Int
    /// A diffusion worker holds the diffusion head and the VQ-VAE (it encodes and decodes pictures).
    public var diffusionWorkerBytes: Int
    /// KV cache bytes per position of one sequence, per layer.
    public var kvBytesPerPositionPerLayer: Int
    public var contextLength: Int
    public var patchesPerImage: Int

    public var layerCount: Int { layerBytes.count }

    public init(
        layerBytes: [Int],
        embeddingBytes: Int,
        finalNormBytes: Int,
        lmHeadBytes: Int,
        diffusionWorkerBytes: Int,
        kvBytesPerPositionPerLayer: Int,
        contextLength: Int,
        patchesPerImage: Int
    ) {
        self.layerBytes = layerBytes
        self.embeddingBytes = embeddingBytes
        self.finalNormBytes = finalNormBytes
        self.lmHeadBytes = lmHeadBytes
        self.diffusionWorkerBytes = diffusionWorkerBytes
        self.kvBytesPerPositionPerLayer = kvBytesPerPositionPerLayer
        self.contextLength = contextLength
        self.patchesPerImage = patchesPerImage
    }

    /// The costs of a checkpoint, from its summary (weights as the engine holds them in memory).
    public init(_ summary: CheckpointSummary) {
        let c = summary.configuration
        func bytes(_ component: Component) -> Int { summary.byComponent[component]?.residentBytes ?? 0 }
        self.init(
            layerBytes: (0..<c.layerCount).map { bytes(.layer($0)) },
            embeddingBytes: bytes(.embeddings),
            finalNormBytes: bytes(.finalNorm),
            lmHeadBytes: bytes(.lmHead),
            diffusionWorkerBytes: bytes(.diffusionHead) + bytes(.vqEncoder) + bytes(.vqDecoder),
            kvBytesPerPositionPerLayer: 2 * c.keyValueHeads * c.headDim * 4,
            contextLength: c.contextLength,
            patchesPerImage: (c.vqConfig ?? VQConfiguration()).patchesPerImage
        )
    }

    /// A process's memory beyond its weights and caches (`CheckpointSummary.processOverhead`).
    public static let processOverhead = CheckpointSummary.processOverhead
}
