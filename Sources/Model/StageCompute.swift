import Checkpoint
import Generation
import Tensor

/// Why a stage refused a micro-batch. Each names the sequence at fault; the stage keeps serving the others.
public enum StageError: Error, Equatable, CustomStringConvertible {
    case positionMismatch(sequence: UInt64, cached: Int, offered: Int)
    case unknownSequence(sequence: UInt64, offered: Int)
    case duplicateSequence(UInt64)
    case rowCount(slices: Int, rows: Int)
    case wrongInputKind(firstStage: Bool)
    case hiddenWidth(found: Int, expected: Int)
    case emptySlice(UInt64)
    case beyondContext(sequence: UInt64, end: Int, context: Int)
    case overKVBudget(needed: Int, free: Int, budget: Int)

    public var description: String {
        switch self {
        case .positionMismatch(let sequence, let cached, let offered):
            "sequence \(sequence): rows start at position \(offered) but this stage holds \(cached) positions"
        case .unknownSequence(let sequence, let offered):
            "sequence \(sequence) is unknown to this stage but its rows start at position \(offered) (replay from 0)"
        case .duplicateSequence(let sequence): "sequence \(sequence) appears twice in one micro-batch"
        case .rowCount(let slices, let rows): "the slices cover \(slices) rows but \(rows) arrived"
        case .wrongInputKind(let first):
            first ? "the first stage takes token ids and latents, not hidden states" : "this stage takes hidden states"
        case .hiddenWidth(let found, let expected):
            "hidden rows are \(found) wide; the model's hidden size is \(expected)"
        case .emptySlice(let sequence): "sequence \(sequence) has an empty slice"
        case .beyondContext(let sequence, let end, let context):
            "sequence \(sequence) would reach position \(end), beyond the model's context of \(context)"
        case .overKVBudget(let needed, let free, let budget):
            "the micro-batch needs \(needed) KV positions but this stage has \(free) free of its budget of \(budget)"
        }
    }
}

/// The compute of one stage worker: a contiguous layer range and the KV caches of every sequence it has seen.
///
/// Each micro-batch is validated before anything runs (positions must continue each sequence's cache exactly, so
/// a replay after a failure is checked too), then all its rows run through the layers in one call. Rows of
/// different sequences never affect each other, so the same sequence gives the same rows on any topology.
public struct StageCompute: Sendable {
    public let stack: LayerStack
    private var caches: [UInt64: KVCache] = [:]
    /// KV positions cached across all sequences, and the most this stage holds (its KV budget): a micro-batch that
    /// would go beyond it is refused before anything is allocated.
    public private(set) var cachedPositions = 0
    public var positionBudget = Int.max

    public init(directory: ModelDirectory, layers: Range<Int>) throws {
        stack = try LayerStack(directory: directory, layers: layers)
    }

    /// Bytes one cached position takes on this stage (keys and values of every layer, float32).
    public var bytesPerPosition: Int {
        layers.count * 2 * stack.configuration.keyValueHeads * stack.configuration.headDim * MemoryLayout<Float>.stride
    }

    public var layers: Range<Int> { stack.layers }
    public var isFirst: Bool { layers.lowerBound == 0 }
    public var isLast: Bool { layers.upperBound == stack.configuration.layerCount }
    /// Sequences whose caches this stage holds.
    public var sequenceCount: Int { caches.count }

    /// Positions cached for a sequence (0 if unknown).
    public func position(of sequence: UInt64) -> Int { caches[sequence]?.count ?? 0 }

    /// Runs one micro-batch; returns one output row per input row (final-normed on the last stage).
    public mutating func run(_ slices: [SequenceSlice], input: StageBatchInput) throws -> Matrix {
        let rows = slices.reduce(0) { $0 + $1.count }
        var seen = Set<UInt64>()
        var batchCaches: [KVCache] = []
        for slice in slices {
            guard slice.count > 0 else { throw StageError.emptySlice(slice.sequenceID) }
            guard seen.insert(slice.sequenceID).inserted else { throw StageError.duplicateSequence(slice.sequenceID) }
            let context = stack.configuration.contextLength
            guard slice.start + slice.count <= context else {
                throw StageError.beyondContext(
                    sequence: slice.sequenceID,
                    end: slice.start + slice.count,
                    context: context
                )
            }
            if let cache = caches[slice.sequenceID] {
                guard cache.count == slice.start else {
                    throw StageError.positionMismatch(
                        sequence: slice.sequenceID,
                        cached: cache.count,
                        offered: slice.start
                    )
                }
                batchCaches.append(cache)
            } else {
                guard slice.start == 0 else {
                    throw StageError.unknownSequence(sequence: slice.sequenceID, offered: slice.start)
                }
                batchCaches.append(stack.makeCache())
            }
        }
        guard rows <= positionBudget - cachedPositions else {
            throw StageError.overKVBudget(needed: rows, free: positionBudget - cachedPositions, budget: positionBudget)
        }
        var x: Matrix
        switch input {
        case .inputs(let inputs):
            guard isFirst else { throw StageError.wrongInputKind(firstStage: false) }
            guard inputs.count == rows else { throw StageError.rowCount(slices: rows, rows: inputs.count) }
            x = try stack.embed(inputs)
        case .hidden(let hidden):
            guard !isFirst else { throw StageError.wrongInputKind(firstStage: true) }
            guard hidden.rows == rows else { throw StageError.rowCount(slices: rows, rows: hidden.rows) }
            guard hidden.columns == stack.configuration.hiddenSize else {
                throw StageError.hiddenWidth(found: hidden.columns, expected: stack.configuration.hiddenSize)
            }
            x = hidden
        }
        // Caches move out of the dictionary for the call so they are not copied, and back in afterwards.
        for slice in slices { caches[slice.sequenceID] = nil }
        defer { for (slice, cache) in zip(slices, batchCaches) { caches[slice.sequenceID] = cache } }
        try stack.forward(&x, rowCounts: slices.map(\.count), caches: &batchCaches)
        cachedPositions += rows
        return x
    }

    /// Drops every cache (the coordinator that knew these sequences is gone).
    public mutating func releaseAll() {
        caches = [:]
        cachedPositions = 0
    }

    /// Drops the caches of finished sequences.
    public mutating func release(_ sequences: [UInt64]) {
        for id in sequences {
            cachedPositions -= caches.removeValue(forKey: id)?.count ?? 0
        }
    }

    /// The last row of each slice: what the last stage sends to the heads.
    public static func lastRows(_ output: Matrix, slices: [SequenceSlice]) -> Matrix {
        var out = Matrix(rows: 0, columns: output.columns)
        var end = 0
        for slice in slices {
            end += slice.count
            out.append(rowsOf: output.rows((end - 1)..<end))
        }
        return out
    }
}
