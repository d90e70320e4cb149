import Heads
import Model
import Stage
import Tensor

/// A text-generation job as the coordinator schedules it.
public struct TextJob: Sendable, Equatable {
    public var id: UInt64
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var seed: UInt64
    public var mask: LogitMask
    public var stopIDs: Set<Int>

    public init(
        id: UInt64,
        prompt: [Int],
        maxTokens: Int,
        sampling: SamplingParameters = .greedy,
        seed: UInt64 = 0,
        mask: LogitMask = .none,
        stopIDs: Set<Int> = []
    ) {
        self.id = id
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.seed = seed
        self.mask = mask
        self.stopIDs = stopIDs
    }
}

/// Iteration-level scheduling of many jobs over a pipeline of stages (Orca/vLLM-style continuous batching), as a
/// pure state machine: inputs are submissions, stage outputs and sampled tokens; outputs are directives for the
/// coordinator's shell. One sequence is in at most one micro-batch at a time, prompts are prefilled in chunks so one
/// long prompt cannot stall the others, and as many micro-batches are kept in flight as the pipeline is deep.
public struct Scheduler: Sendable {
    public struct Configuration: Sendable {
        /// Micro-batches kept in flight (at least the number of stages keeps every stage busy).
        public var pipelineDepth: Int
        /// Rows per micro-batch at most.
        public var maxRows: Int
        /// Prompt positions a sequence contributes to one micro-batch at most.
        public var prefillChunk: Int
        /// The model's context length.
        public var contextLength: Int

        public init(pipelineDepth: Int, maxRows: Int = 256, prefillChunk: Int = 64, contextLength: Int) {
            precondition(pipelineDepth > 0 && maxRows > 0 && prefillChunk > 0, "scheduler limits must be positive")
            self.pipelineDepth = pipelineDepth
            self.maxRows = maxRows
            self.prefillChunk = prefillChunk
            self.contextLength = contextLength
        }
    }

    public enum Directive: Equatable, Sendable {
        /// Send this micro-batch to the first stage.
        case forward(microBatch: UInt64, slices: [SequenceSlice], inputs: [StageInput])
        /// Ask the LM pool for these rows' tokens; `hidden` holds their final states in row order.
        case sampleTokens(requestID: UInt64, rows: [TokenChoice], hidden: Matrix)
        /// A job produced a token (stream it to the client).
        case token(job: UInt64, token: Int)
        /// A job is done.
        case finished(job: UInt64, tokens: [Int], reason: FinishReason)
        /// Drop these sequences' KV caches on every stage.
        case release(sequences: [UInt64])
    }

    /// What the LM pool needs to choose one row's token, as the engine would.
    public struct TokenChoice: Equatable, Sendable {
        public var sequenceID: UInt64
        public var sampling: SamplingParameters
        public var seed: UInt64
        public var counter: UInt64
        public var mask: LogitMask
    }

    public enum FinishReason: Equatable, Sendable {
        case stopToken(Int)
        case maxTokens
        case contextFull
    }

    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case emptyPrompt(job: UInt64)
        case promptTooLong(job: UInt64, tokens: Int, context: Int)
        case duplicateJob(UInt64)
        case unknownMicroBatch(UInt64)
        case unknownRequest(UInt64)
        case rowCount(expected: Int, found: Int)

        public var description: String {
            switch self {
            case .emptyPrompt(let job): "job \(job) has an empty prompt"
            case .promptTooLong(let job, let tokens, let context):
                "job \(job): the prompt is \(tokens) tokens; the model's context is \(context)"
            case .duplicateJob(let job): "job \(job) is already running"
            case .unknownMicroBatch(let id): "no micro-batch \(id) is in flight"
            case .unknownRequest(let id): "no token request \(id) is outstanding"
            case .rowCount(let expected, let found): "expected \(expected) rows, got \(found)"
            }
        }
    }

    private struct Sequence {
        let job: TextJob
        var pending: [Int]
        var position = 0
        var generated: [Int] = []
        var busy = false
        var lastScheduled: UInt64 = 0
    }

    public let configuration: Configuration
    private var sequences: [UInt64: Sequence] = [:]
    private var inFlight: [UInt64: [SequenceSlice]] = [:]
    private var outstanding: [UInt64: [UInt64]] = [:]
    private var nextMicroBatch: UInt64 = 1
    private var tick: UInt64 = 0

    public init(configuration: Configuration) { self.configuration = configuration }

    /// Jobs still running.
    public var activeJobs: Int { sequences.count }
    /// Micro-batches between the first stage and the heads.
    public var microBatchesInFlight: Int { inFlight.count }

    /// Accepts a job (its sequence id is the job id) and schedules what can run.
    public mutating func submit(_ job: TextJob) throws(Refusal) -> [Directive] {
        guard !job.prompt.isEmpty else { throw .emptyPrompt(job: job.id) }
        guard job.prompt.count < configuration.contextLength else {
            throw .promptTooLong(job: job.id, tokens: job.prompt.count, context: configuration.contextLength)
        }
        guard sequences[job.id] == nil else { throw .duplicateJob(job.id) }
        sequences[job.id] = Sequence(job: job, pending: job.prompt)
        return schedule()
    }

    /// The last stage's rows for a micro-batch: one final-normed row per slice, in slice order.
    public mutating func stageOutput(microBatch: UInt64, lastRows: Matrix) throws(Refusal) -> [Directive] {
        guard let slices = inFlight.removeValue(forKey: microBatch) else { throw .unknownMicroBatch(microBatch) }
        guard lastRows.rows == slices.count else { throw .rowCount(expected: slices.count, found: lastRows.rows) }
        var choices: [TokenChoice] = []
        var hidden = Matrix(rows: 0, columns: lastRows.columns)
        var waiting: [UInt64] = []
        for (index, slice) in slices.enumerated() {
            guard var sequence = sequences[slice.sequenceID] else { continue }
            if sequence.pending.isEmpty {
                // The prompt (or the last token) is in: its final state chooses the next token.
                choices.append(
                    TokenChoice(
                        sequenceID: slice.sequenceID,
                        sampling: sequence.job.sampling,
                        seed: sequence.job.seed,
                        counter: UInt64(sequence.generated.count),
                        mask: sequence.job.mask
                    )
                )
                hidden.append(rowsOf: lastRows.rows(index..<(index + 1)))
                waiting.append(slice.sequenceID)
            } else {
                sequence.busy = false
            }
            sequences[slice.sequenceID] = sequence
        }
        var directives: [Directive] = []
        if !choices.isEmpty {
            outstanding[microBatch] = waiting
            directives.append(.sampleTokens(requestID: microBatch, rows: choices, hidden: hidden))
        }
        return directives + schedule()
    }

    /// Tokens chosen by the LM pool for a request, in its row order.
    public mutating func sampled(requestID: UInt64, tokens: [Int]) throws(Refusal) -> [Directive] {
        guard let ids = outstanding.removeValue(forKey: requestID) else { throw .unknownRequest(requestID) }
        guard ids.count == tokens.count else { throw .rowCount(expected: ids.count, found: tokens.count) }
        var directives: [Directive] = []
        for (id, token) in zip(ids, tokens) {
            guard var sequence = sequences[id] else { continue }
            sequence.generated.append(token)
            sequence.busy = false
            directives.append(.token(job: sequence.job.id, token: token))
            let reason: FinishReason? =
                sequence.job.stopIDs.contains(token)
                ? .stopToken(token)
                : sequence.generated.count >= sequence.job.maxTokens
                    ? .maxTokens
                    : sequence.position >= configuration.contextLength ? .contextFull : nil
            if let reason {
                sequences[id] = nil
                directives += [
                    .finished(job: sequence.job.id, tokens: sequence.generated, reason: reason),
                    .release(sequences: [id]),
                ]
            } else {
                sequence.pending = [token]
                sequences[id] = sequence
            }
        }
        return directives + schedule()
    }

    /// Forms micro-batches while the pipeline has room: ready sequences, least recently scheduled first, each with
    /// one slice (its next token, or its next prompt chunk).
    private mutating func schedule() -> [Directive] {
        var directives: [Directive] = []
        while inFlight.count < configuration.pipelineDepth {
            let ready = sequences.filter { !$0.value.busy && !$0.value.pending.isEmpty }
                .sorted { ($0.value.lastScheduled, $0.key) < ($1.value.lastScheduled, $1.key) }
            guard !ready.isEmpty else { break }
            var slices: [SequenceSlice] = []
            var inputs: [StageInput] = []
            tick += 1
            for (id, var sequence) in ready {
                let room = configuration.maxRows - inputs.count
                guard room > 0 else { break }
                let count = min(sequence.pending.count, configuration.prefillChunk, room)
                slices.append(SequenceSlice(sequenceID: id, start: sequence.position, count: count))
                inputs += sequence.pending.prefix(count).map(StageInput.token)
                sequence.pending.removeFirst(count)
                sequence.position += count
                sequence.busy = true
                sequence.lastScheduled = tick
                sequences[id] = sequence
            }
            let id = nextMicroBatch
            nextMicroBatch += 1
            inFlight[id] = slices
            directives.append(.forward(microBatch: id, slices: slices, inputs: inputs))
        }
        return directives
    }
}
