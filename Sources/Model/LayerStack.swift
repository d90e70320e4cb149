import Checkpoint
import Generation
import Tensor

/// A contiguous range of decoder layers, the unit a stage worker serves.
///
/// The first range (`0..<b`) also owns the token embeddings; the last (`a..<layerCount`) the final RMSNorm. A single
/// process holds the whole range `0..<layerCount`.
public struct LayerStack: Sendable {
    public let configuration: OrthusConfiguration
    public let layers: Range<Int>
    let blocks: [DecoderLayer]
    let rope: RotaryEmbedding
    /// `[vocab, hidden]`, present on the first stage.
    let embeddings: [Float]?
    /// Present on the last stage.
    let finalNorm: [Float]?
    /// Present on the first stage of an Orthus checkpoint (`model.codebook_in`); plain Chameleon has none.
    let softEmbedding: SoftEmbedding?

    /// Loads `layers` (and the embeddings / final norm where the range begins / ends the model) from `directory`.
    public init(directory: ModelDirectory, layers: Range<Int>) throws {
        let c = directory.configuration
        guard layers.lowerBound >= 0, layers.upperBound <= c.layerCount, !layers.isEmpty else {
            throw CheckpointError.invalidArgument(
                flag: "layers",
                detail: "range \(layers.lowerBound)..<\(layers.upperBound) is not within 0..<\(c.layerCount)"
            )
        }
        let manifest = TensorManifest(c)
        configuration = c
        self.layers = layers
        blocks = try layers.map { try DecoderLayer(index: $0, from: directory) }
        rope = RotaryEmbedding(headDim: c.headDim, base: c.ropeBase)
        embeddings =
            layers.lowerBound == 0
            ? try directory.load(TensorManifest.embeddings, shape: manifest.embeddingShape).values : nil
        if layers.lowerBound == 0, directory.weightMap[TensorManifest.codebookIn] != nil {
            let codes = c.vqConfig?.codes ?? 8192
            let latent = c.vqConfig?.latentDim ?? 256
            let codebook = try directory.load(TensorManifest.codebookIn, shape: [codes, latent]).values
            softEmbedding = SoftEmbedding(codebook: codebook, codes: codes, latentDim: latent)
        } else {
            softEmbedding = nil
        }
        finalNorm =
            layers.upperBound == c.layerCount
            ? try directory.load(TensorManifest.finalNorm, shape: manifest.finalNormShape).values : nil
    }

    /// Bytes each weight of the matrix products occupies in memory (what a decode step reads per parameter): 2 for a
    /// bf16 checkpoint, whose weights stay bf16, else 4.
    /// Bytes of the layers' matrix-product weights as held in memory: what one decode step reads.
    public var residentProductBytes: Int {
        blocks.reduce(0) {
            $0 + $1.qkv.residentBytes + $1.output.residentBytes + $1.gateUp.residentBytes + $1.down.residentBytes
        }
    }

    /// An empty cache for one sequence over this stack's layers.
    public func makeCache() -> KVCache {
        KVCache(layers: layers, width: configuration.keyValueHeads * configuration.headDim)
    }

    /// Embedding rows for `ids`. Only the first stage has the table.
    public func embed(_ ids: [Int]) throws -> Matrix {
        guard let table = embeddings else {
            preconditionFailure("embed called on a stack that does not start at layer 0")
        }
        let width = configuration.hiddenSize
        var out = Matrix(rows: ids.count, columns: width)
        for (row, id) in ids.enumerated() {
            guard (0..<configuration.vocabSize).contains(id) else {
                throw ModelError.tokenOutOfRange(id: id, vocabSize: configuration.vocabSize)
            }
            out.storage.replaceSubrange(
                (row * width)..<((row + 1) * width),
                with: table[(id * width)..<((id + 1) * width)]
            )
        }
        return out
    }

    /// Embedding rows for a mix of token ids and continuous image latents (the soft embedding), in order.
    public func embed(_ inputs: [StageInput]) throws -> Matrix {
        let latentRows = inputs.enumerated().compactMap { index, input -> (Int, [Float])? in
            if case .latent(let values) = input { return (index, values) }
            return nil
        }
        var out = try embed(inputs.map { if case .token(let id) = $0 { id } else { 0 } })
        guard !latentRows.isEmpty else { return out }
        guard let softEmbedding, let table = embeddings else { throw ModelError.noSoftEmbedding }
        let width = configuration.hiddenSize
        var latents = Matrix(rows: 0, columns: softEmbedding.latentDim)
        for (_, values) in latentRows {
            guard values.count == softEmbedding.latentDim else {
                throw ModelError.latentWidth(found: values.count, expected: softEmbedding.latentDim)
            }
            latents.append(rowsOf: Matrix(rows: 1, columns: values.count, values: values))
        }
        let embedded = softEmbedding.embed(latents, table: table, hidden: width)
        for (slot, (row, _)) in latentRows.enumerated() {
            out.storage.replaceSubrange(
                (row * width)..<((row + 1) * width),
                with: embedded.storage[(slot * width)..<((slot + 1) * width)]
            )
        }
        return out
    }

    /// Runs every layer of the stack over `x` in place; on the last stage the rows come out final-normed.
    ///
    /// Rows are grouped by sequence: `rowCounts[s]` consecutive rows continue sequence `s` from `caches[s].count`.
    /// Rows of different sequences never influence each other, so any mix of prefill chunks and decode steps can share
    /// one call.
    public func forward(_ x: inout Matrix, rowCounts: [Int], caches: inout [KVCache]) throws {
        precondition(rowCounts.count == caches.count, "\(rowCounts.count) row groups for \(caches.count) caches")
        precondition(rowCounts.reduce(0, +) == x.rows, "row groups cover \(rowCounts.reduce(0, +)) of \(x.rows) rows")
        precondition(
            x.columns == configuration.hiddenSize,
            "input width \(x.columns) ≠ hidden \(configuration.hiddenSize)"
        )
        for (s, cache) in caches.enumerated() {
            precondition(cache.layers == layers, "cache for layers \(cache.layers) used with stack \(layers)")
            guard cache.count + rowCounts[s] <= configuration.contextLength else {
                throw ModelError.contextExceeded(needed: cache.count + rowCounts[s], limit: configuration.contextLength)
            }
        }
        for block in blocks {
            block.forward(&x, rowCounts: rowCounts, caches: &caches, rope: rope)
        }
        for s in caches.indices { caches[s].advance(by: rowCounts[s]) }
        if let finalNorm {
            let rows = x.rows
            let width = x.columns
            let eps = configuration.normEps
            x.storage.withUnsafeMutableBufferPointer {
                RowKernels.rmsNorm($0.baseAddress!, rows: rows, width: width, weight: finalNorm, eps: eps)
            }
        }
    }
}

/// Errors from running the model on bad input.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case tokenOutOfRange(id: Int, vocabSize: Int)
    case contextExceeded(needed: Int, limit: Int)
    case noSoftEmbedding
    case latentWidth(found: Int, expected: Int)

    public var description: String {
        switch self {
        case .tokenOutOfRange(let id, let vocab): "token id \(id) is outside the vocabulary (0..<\(vocab))"
        case .noSoftEmbedding:
            "this checkpoint has no model.codebook_in (plain Chameleon): it cannot take image latents"
        case .latentWidth(let found, let expected):
            "an image latent has \(found) values; the model's latent has \(expected)"
        case .contextExceeded(let needed, let limit):
            "sequence would reach \(needed) positions, beyond the model's context of \(limit) (max_position_embeddings)"
        }
    }
}
