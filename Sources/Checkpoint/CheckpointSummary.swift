/// Sizes of a checkpoint by component, and the memory a layer split needs (`orthus inspect`).
public struct CheckpointSummary: Sendable {
    /// Tensor count, parameters and stored bytes of one component.
    public struct Tally: Sendable, Equatable {
        public var tensors = 0
        public var parameters = 0
        public var storedBytes = 0
        /// Bytes in memory once loaded: bf16 product weights as stored, the rest as float32.
        public var residentBytes = 0

        public init() {}

        mutating func add(_ entry: TensorEntry) {
            tensors += 1
            parameters += entry.elementCount
            storedBytes += entry.byteRange.count
            residentBytes += TensorManifest.staysAsStored(entry) ? entry.byteRange.count : entry.elementCount * 4
        }
    }

    public let configuration: OrthusConfiguration
    public let byComponent: [Component: Tally]
    public let total: Tally
    public let shardCount: Int
    public let dtypes: [String: Int]

    /// Reads every shard's header (no tensor data).
    public init(_ directory: ModelDirectory) throws {
        var byComponent: [Component: Tally] = [:]
        var total = Tally()
        var dtypes: [String: Int] = [:]
        for name in directory.tensorNames {
            let entry = try directory.entry(name)
            byComponent[Component(tensorName: name), default: Tally()].add(entry)
            total.add(entry)
            dtypes[entry.dtypeName, default: 0] += 1
        }
        configuration = directory.configuration
        self.byComponent = byComponent
        self.total = total
        self.shardCount = Set(directory.weightMap.values).count
        self.dtypes = dtypes
    }

    /// Whether the checkpoint carries the Orthus parts (soft-embedding codebook, diffusion head, VQ decoder).
    public var hasOrthusParts: Bool {
        byComponent[.diffusionHead] != nil && byComponent[.vqDecoder] != nil
    }

    /// What one stage of a split holds.
    public struct StageNeeds: Sendable, Equatable {
        public var layers: Range<Int>
        public var parameters: Int
        public var storedBytes: Int
        /// Weights as the engine holds them in memory.
        public var residentBytes: Int
        /// Bytes of KV cache per token of one sequence (float32 keys and values of the stage's layers).
        public var kvBytesPerToken: Int
    }

    /// Per-stage needs of `split` (contiguous ranges covering every layer). Stage 0 also holds the embeddings, the
    /// last stage the final norm. The LM head and diffusion head live in their own worker pools.
    public func stages(_ split: [Range<Int>]) throws -> [StageNeeds] {
        var expected = 0
        for range in split {
            guard range.lowerBound == expected, !range.isEmpty else {
                throw CheckpointError.invalidArgument(
                    flag: "split",
                    detail:
                        "ranges must be contiguous from layer 0; got \(split.map { "\($0.lowerBound)..<\($0.upperBound)" })"
                )
            }
            expected = range.upperBound
        }
        guard expected == configuration.layerCount else {
            throw CheckpointError.invalidArgument(
                flag: "split",
                detail: "ranges end at layer \(expected), the model has \(configuration.layerCount)"
            )
        }
        let kvPerLayer = 2 * configuration.keyValueHeads * configuration.headDim * 4
        return split.enumerated().map { index, range in
            var tally = Tally()
            for layer in range { merge(&tally, byComponent[.layer(layer)]) }
            if index == 0 { merge(&tally, byComponent[.embeddings]) }
            if index == split.count - 1 { merge(&tally, byComponent[.finalNorm]) }
            return StageNeeds(
                layers: range,
                parameters: tally.parameters,
                storedBytes: tally.storedBytes,
                residentBytes: tally.residentBytes,
                kvBytesPerToken: kvPerLayer * range.count
            )
        }
    }

    private func merge(_ tally: inout Tally, _ other: Tally?) {
        guard let other else { return }
        tally.tensors += other.tensors
        tally.parameters += other.parameters
        tally.storedBytes += other.storedBytes
        tally.residentBytes += other.residentBytes
    }
}
