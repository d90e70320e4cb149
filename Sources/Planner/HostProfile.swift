/// A host as the engine uses it, measured by `orthus profile` on that host with a model of the geometry it will run:
/// the time of one layer for a decode micro-batch of 1, 4 and 16 rows and for a prefill chunk, the LM head per row,
/// the diffusion head per row and step, a VQ decode, and the host's memory and cores. The planner predicts a stage's
/// time from these (layers × time per layer), so a profile is worth as much as the geometry it was measured with
/// matches the model planned.
public struct HostProfile: Codable, Sendable, Equatable {
    public var host: String
    public var cores: Int
    /// Compute threads the measurements used (a stage's BLAS threads).
    public var threads: Int
    public var memoryBytes: Int
    public var availableBytes: Int
    public var readBytesPerSecond: Double
    public var sgemmFlopsPerSecond: Double
    /// The model the layer times were measured on: its hidden size, MLP size and layer count.
    public var hiddenSize: Int
    public var intermediateSize: Int
    /// Seconds one layer takes for a decode micro-batch of `rows` rows (each a sequence with some context), by rows.
    public var layerSeconds: [Int: Double]
    /// Prefill chunk length, and the seconds one layer takes for it.
    public var prefillChunk: Int
    public var prefillLayerSeconds: Double
    /// The LM head (final states to logits and a choice) per row, at 16 rows.
    public var lmHeadSecondsPerRow: Double
    /// The diffusion head per row and DDIM step (a CFG pair is two rows), at 16 rows.
    public var diffusionSecondsPerRowStep: Double
    public var vqDecodeSeconds: Double
    /// One cluster message of a decode micro-batch's size (8 rows) over TCP loopback, one way.
    public var messageSeconds: Double

    public init(
        host: String,
        cores: Int,
        threads: Int,
        memoryBytes: Int,
        availableBytes: Int,
        readBytesPerSecond: Double,
        sgemmFlopsPerSecond: Double,
        hiddenSize: Int,
        intermediateSize: Int,
        layerSeconds: [Int: Double],
        prefillChunk: Int,
        prefillLayerSeconds: Double,
        lmHeadSecondsPerRow: Double,
        diffusionSecondsPerRowStep: Double,
        vqDecodeSeconds: Double,
        messageSeconds: Double
    ) {
        self.host = host
        self.cores = cores
        self.threads = threads
        self.memoryBytes = memoryBytes
        self.availableBytes = availableBytes
        self.readBytesPerSecond = readBytesPerSecond
        self.sgemmFlopsPerSecond = sgemmFlopsPerSecond
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerSeconds = layerSeconds
        self.prefillChunk = prefillChunk
        self.prefillLayerSeconds = prefillLayerSeconds
        self.lmHeadSecondsPerRow = lmHeadSecondsPerRow
        self.diffusionSecondsPerRowStep = diffusionSecondsPerRowStep
        self.vqDecodeSeconds = vqDecodeSeconds
        self.messageSeconds = messageSeconds
    }

    /// One layer's time for a micro-batch of `rows` decode rows: measured points, linear between them and beyond
    /// the last (a layer's time grows with its rows once the weights are read; below, it is the weights' read).
    public func layerTime(rows: Int) -> Double {
        let points = layerSeconds.sorted { $0.key < $1.key }
        guard let first = points.first else { return 0 }
        guard rows > first.key else { return first.value }
        for (a, b) in zip(points, points.dropFirst()) where rows <= b.key {
            return a.value + (b.value - a.value) * Double(rows - a.key) / Double(b.key - a.key)
        }
        guard points.count > 1 else { return first.value * Double(rows) / Double(first.key) }
        let (a, b) = (points[points.count - 2], points[points.count - 1])
        return b.value + (b.value - a.value) * Double(rows - b.key) / Double(b.key - a.key)
    }
}
