import Tensor

/// Sizes of a checkpoint by component, and the memory a layer split needs (`orthus inspect`).
public struct CheckpointSummary: Sendable {
    /// Tensor count, parameters and stored bytes of one component.
    public struct Tally: Sendable, Equatable {
        public var tensors = 0
        public var parameters = 0
        public var storedBytes = 0
        /// Bytes in memory once loaded: product weights packed (as stored, padded to the packing's group of
        /// outputs), the rest as float32.
        public var residentBytes = 0

        public init() {}

        mutating func add(_ entry: TensorEntry, resident: Int) {
            tensors += 1
            parameters += entry.elementCount
            storedBytes += entry.byteRange.count
            residentBytes += resident
        }
    }

    /// Each tensor's bytes in memory once loaded. A stack of products (a layer's q, k and v) is packed as one
    /// matrix, padded once; its bytes are counted on its first member.
    static func residentBytes(_ entries: [String: TensorEntry]) -> [String: Int] {
        var resident: [String: Int] = [:]
        for entry in entries.values where TensorManifest.isProduct(entry) {
            guard case .layer(let index) = Component(tensorName: entry.name) else { continue }
            for stack in TensorManifest.LayerNames(index).stacks where stack.first == entry.name {
                let members = stack.compactMap { entries[$0] }
                guard members.count == stack.count else { continue }
                let element = ModelDirectory.packedElement(of: members) ?? .float32
                resident[entry.name] = Weights.residentBytes(
                    outputs: members.reduce(0) { $0 + $1.shape[0] },
                    inputs: entry.shape[1],
                    element: element
                )
                for member in stack.dropFirst() { resident[member] = 0 }
            }
        }
        for entry in entries.values where resident[entry.name] == nil {
            if TensorManifest.isProduct(entry) {
                resident[entry.name] = Weights.residentBytes(
                    outputs: entry.shape[0],
                    inputs: entry.shape[1],
                    element: ModelDirectory.packedElement(of: [entry]) ?? .float32
                )
            } else if entry.name.hasSuffix("_scale"),
                let weight = entries[String(entry.name.dropLast("_scale".count))], weight.dtype == .int8
            {
                resident[entry.name] = 0  // packed into its 8-bit weight's panels, counted there
            } else {
                resident[entry.name] = entry.elementCount * 4
            }
        }
        return resident
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
        let entries = Dictionary(uniqueKeysWithValues: try directory.tensorNames.map { ($0, try directory.entry($0)) })
        let resident = Self.residentBytes(entries)
        for name in directory.tensorNames {
            let entry = entries[name]!
            byComponent[Component(tensorName: name), default: Tally()].add(entry, resident: resident[name]!)
            total.add(entry, resident: resident[name]!)
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

    /// A process's memory beyond its weights and caches (runtime, sockets, buffers, activations): idle workers of the
    /// bundled model measured 36-38 MiB above their weights (resident set against `orthus inspect`); 64 MiB leaves
    /// room for message buffers under load.
    public static let processOverhead = 64 << 20

    /// What a process is predicted to hold resident: its weights as packed in memory, the KV caches of the positions
    /// it has cached, and the process overhead. The weights are held once (`ModelDirectory` releases the mapped pages
    /// of what it copies), so this is the whole of it.
    public struct MemoryPrediction: Sendable, Equatable {
        public var weightBytes: Int
        public var kvBytes: Int
        public var overheadBytes: Int
        public var totalBytes: Int { weightBytes + kvBytes + overheadBytes }
    }

    /// KV cache bytes per cached position per layer (float32 keys and values).
    public var kvBytesPerPositionPerLayer: Int { 2 * configuration.keyValueHeads * configuration.headDim * 4 }

    /// One process with the whole model (`orthus generate`, `eval --model`): every tensor, KV for `cachedTokens`
    /// positions in every layer.
    public func wholeModelMemory(cachedTokens: Int) -> MemoryPrediction {
        MemoryPrediction(
            weightBytes: total.residentBytes,
            kvBytes: cachedTokens * kvBytesPerPositionPerLayer * configuration.layerCount,
            overheadBytes: Self.processOverhead
        )
    }

    /// Stage `index` of `split` with `cachedTokens` positions cached.
    public func stageMemory(_ split: [Range<Int>], index: Int, cachedTokens: Int) throws -> MemoryPrediction {
        let stage = try stages(split)[index]
        return MemoryPrediction(
            weightBytes: stage.residentBytes,
            kvBytes: cachedTokens * stage.kvBytesPerToken,
            overheadBytes: Self.processOverhead
        )
    }

    /// An LM-head worker.
    public var lmHeadWorkerMemory: MemoryPrediction {
        MemoryPrediction(
            weightBytes: byComponent[.lmHead]?.residentBytes ?? 0,
            kvBytes: 0,
            overheadBytes: Self.processOverhead
        )
    }

    /// A diffusion worker: the diffusion head and the VQ-VAE's encoder and decoder.
    public var diffusionWorkerMemory: MemoryPrediction {
        let parts = [Component.diffusionHead, .vqEncoder, .vqDecoder].compactMap { byComponent[$0] }
        return MemoryPrediction(
            weightBytes: parts.reduce(0) { $0 + $1.residentBytes },
            kvBytes: 0,
            overheadBytes: Self.processOverhead
        )
    }
}
