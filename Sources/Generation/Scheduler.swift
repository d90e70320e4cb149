import Tensor

/// Iteration-level scheduling of many jobs over a pipeline of stages (Orca/vLLM-style continuous batching), as a
/// pure state machine: inputs are submissions, stage outputs and head results; outputs are directives for whoever
/// executes them (the coordinator's shell across processes, `LocalExecutor` in one). A sequence is in at most one
/// micro-batch at a time, prompts are prefilled in chunks so one long prompt cannot stall the others, as many
/// micro-batches are kept in flight as the pipeline is deep, and a CFG pair travels in one micro-batch whenever both
/// are ready.
///
/// Each sequence belongs to a lane, one per micro-batch the pipeline holds, and a lane has at most one micro-batch in
/// flight (vLLM's virtual engines do the same). Without lanes, whichever sequences happened to be ready formed the
/// next micro-batch, and arrival order fixed the groups for good: eight jobs on two stages ran as micro-batches of 1,
/// 1 and 6 rows in turn, so each stage read its weights three times per round instead of twice. New sequences join
/// the lane with the fewest, and lanes are evened out as sequences finish or the depth changes.
///
/// The handlers of each job kind live in their own files (`Scheduler+Text`, `+Image`, `+Interleaved`); lanes and
/// micro-batch forming in `Scheduler+Lanes`.
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
            precondition(pipelineDepth > 0 && maxRows > 1 && prefillChunk > 0, "scheduler limits must be positive")
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
        /// Ask the diffusion pool for these patches (every CFG pair one micro-batch completed), answered together.
        case samplePatches(requestID: UInt64, patches: [PatchWork])
        /// A job produced a token (stream it to the client).
        case token(job: UInt64, token: Int)
        /// A job finished patch `done` of `total` of image `image`; `latent` is that patch's (patches come in raster
        /// order, so the first `done` of the image are known: a client can draw the picture as it fills in).
        case patchDone(job: UInt64, image: Int, done: Int, total: Int, latent: [Float])
        /// A job is done.
        case finished(job: UInt64, answer: JobAnswer)
        /// Drop these sequences' KV caches on every stage.
        case release(sequences: [UInt64])
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
            case .unknownRequest(let id): "no head request \(id) is outstanding"
            case .rowCount(let expected, let found): "expected \(expected) rows, got \(found)"
            }
        }
    }

    /// One running job: what it is, and its answer so far.
    struct JobState {
        enum Kind {
            case text(TextJob)
            case image(ImageJob)
            case interleaved(InterleavedJob)
        }
        /// Where an interleaved job is (text and image jobs stay in `.text` and `.image`).
        enum Phase: Equatable {
            case text
            /// Sampling image patches with this uncond sequence.
            case image(uncond: UInt64)
            /// The last latent was fed to the cond sequence; EOI is forced next.
            case closing
        }
        let kind: Kind
        /// The job's main sequence (text jobs' only one; the cond member of image jobs).
        let cond: UInt64
        var phase: Phase
        /// Tokens chosen or forced so far, in order.
        var tokens: [Int] = []
        /// Interleaved: generated positions (text, BOI, patches, EOI).
        var generated = 0
        var pieces: [AnswerPiece] = []
        var textRun: [Int] = []
        /// The patches of the image being sampled.
        var latents: [[Float]] = []
        var images = 0
    }

    struct Sequence {
        let job: UInt64
        /// Inputs not yet sent to the stages; a sequence's next input is appended once its head answers.
        var pending: [StageInput]
        /// Inputs the stages have been given, in order: what a replay sends again.
        var history: [StageInput] = []
        var position = 0
        /// In a micro-batch that has not come back.
        var inBatch = false
        /// Its last row went to a head (or waits for its CFG partner's); its next input comes from that answer.
        var awaitingHead = false
        /// During a replay, the position whose output was already answered before the stage was lost.
        var suppressAt: Int?
        var lastScheduled: UInt64 = 0
        /// The other member of a CFG pair.
        var partner: UInt64?
        /// An image sequence's final row, kept until its partner's arrives.
        var finalRow: [Float]?
        /// The lane whose micro-batches carry it (its partner's too).
        var lane = 0

        /// Whether it can join a micro-batch: inputs waiting, not in flight, and not waiting on a head, except to
        /// replay inputs whose answer it already has.
        var isReady: Bool { !inBatch && !pending.isEmpty && (!awaitingHead || suppressAt != nil) }

        /// Its head answered: `input` is its next position.
        mutating func feed(_ input: StageInput) {
            pending.append(input)
            awaitingHead = false
        }
    }

    enum Outstanding {
        case tokens([UInt64])
        /// The job of each patch, in request order.
        case patches([UInt64])
    }

    /// A micro-batch between the first stage and the heads.
    struct Flight {
        let lane: Int
        let slices: [SequenceSlice]
    }

    public internal(set) var configuration: Configuration
    var jobs: [UInt64: JobState] = [:]
    var sequences: [UInt64: Sequence] = [:]
    var inFlight: [UInt64: Flight] = [:]
    var outstanding: [UInt64: Outstanding] = [:]
    var nextSequence: UInt64
    var nextMicroBatch: UInt64
    var nextRequest: UInt64
    var tick: UInt64 = 0
    /// Whether scheduling waits for a replay.
    public internal(set) var paused = false

    /// `firstID` starts the sequence, micro-batch and head-request numbering: a restarted coordinator starts above its
    /// predecessor's, so work of the old one still in flight (a stage's cache, a late output) never passes for its own.
    public init(configuration: Configuration, firstID: UInt64 = 1) {
        self.configuration = configuration
        nextSequence = firstID
        nextMicroBatch = firstID
        nextRequest = firstID
    }

    /// Jobs still running.
    public var activeJobs: Int { jobs.count }
    /// Micro-batches between the first stage and the heads.
    public var microBatchesInFlight: Int { inFlight.count }

    /// The job a sequence belongs to, while it runs.
    public func job(ofSequence id: UInt64) -> UInt64? { sequences[id]?.job }

    // MARK: - Control

    /// Keeps `depth` micro-batches in flight (the coordinator matches it to the pipeline it has) and schedules.
    public mutating func setPipelineDepth(_ depth: Int) -> [Directive] {
        configuration.pipelineDepth = max(1, depth)
        return schedule()
    }

    /// Stops a job wherever it is: its sequences are forgotten (results still on their way are ignored) and the
    /// stages are told to drop their caches.
    public mutating func cancel(job: UInt64) -> [Directive] {
        guard jobs.removeValue(forKey: job) != nil else { return [] }
        let ids = sequences.filter { $0.value.job == job }.map(\.key).sorted()
        for id in ids { sequences[id] = nil }
        return (ids.isEmpty ? [] : [.release(sequences: ids)]) + schedule()
    }

    /// A micro-batch that will not come back (a stage refused it): it leaves the pipeline and the jobs it carried,
    /// whose sequences cannot continue, are cancelled. Returns those jobs (to tell their clients) and the directives
    /// (cache releases, and what the freed slot lets run).
    public mutating func abandon(microBatch: UInt64) -> (jobs: [UInt64], directives: [Directive]) {
        guard let slices = inFlight.removeValue(forKey: microBatch)?.slices else { return ([], []) }
        let failed = Set(slices.compactMap { sequences[$0.sequenceID]?.job }).sorted()
        var directives: [Directive] = []
        for job in failed { directives += cancel(job: job) }
        return (failed, directives + schedule())
    }

    /// The pipeline lost a stage: every micro-batch in flight is gone, and nothing is scheduled until `replay()`.
    /// Head answers still arriving are kept.
    public mutating func suspend() {
        inFlight = [:]
        paused = true
        for id in sequences.keys { sequences[id]?.inBatch = false }
    }

    /// A new pipeline is in place whose stages hold none of the sequences' caches (or stale ones): every sequence
    /// replays its inputs from position 0, the stages first drop what they hold, and an output that was already
    /// answered before the loss is not used twice. The outputs are the same as an undisturbed run's.
    public mutating func replay() -> [Directive] {
        paused = false
        for id in sequences.keys {
            // A sequence lost again mid-replay keeps the position it had: its history is only partly re-sent.
            if sequences[id]!.awaitingHead && sequences[id]!.suppressAt == nil {
                sequences[id]!.suppressAt = sequences[id]!.history.count
            }
            sequences[id]!.pending = sequences[id]!.history + sequences[id]!.pending
            sequences[id]!.history = []
            sequences[id]!.position = 0
            sequences[id]!.inBatch = false
        }
        let ids = sequences.keys.sorted()
        return (ids.isEmpty ? [] : [.release(sequences: ids)]) + schedule()
    }

    // MARK: - Stage outputs and head answers

    /// The last stage's rows for a micro-batch: one final-normed row per slice, in slice order.
    public mutating func stageOutput(microBatch: UInt64, lastRows: Matrix) throws(Refusal) -> [Directive] {
        guard let slices = inFlight.removeValue(forKey: microBatch)?.slices else {
            throw .unknownMicroBatch(microBatch)
        }
        guard lastRows.rows == slices.count else { throw .rowCount(expected: slices.count, found: lastRows.rows) }
        var round = OutputRound(width: lastRows.columns)
        for (index, slice) in slices.enumerated() {
            let id = slice.sequenceID
            guard sequences[id] != nil, let job = sequences[id]?.job, let state = jobs[job] else { continue }
            sequences[id]!.inBatch = false
            if let end = sequences[id]!.suppressAt, sequences[id]!.position >= end {
                // A replay reached the position whose output was answered before the stage was lost: not again.
                sequences[id]!.suppressAt = nil
                if sequences[id]!.position == end { continue }
            }
            // Mid-prompt (or mid-replay) rows only fill the caches.
            guard sequences[id]!.pending.isEmpty else { continue }
            sequences[id]!.awaitingHead = true
            let row = Array(lastRows.storage[(index * lastRows.columns)..<((index + 1) * lastRows.columns)])
            switch state.kind {
            case .text(let text): textOutput(text, sequence: id, row: row, into: &round)
            case .image(let image): imageOutput(image, sequence: id, row: row, into: &round)
            case .interleaved(let interleaved): interleavedOutput(interleaved, sequence: id, row: row, into: &round)
            }
        }
        var directives = round.directives
        if !round.choices.isEmpty {
            let request = newRequest(.tokens(round.choices.map(\.sequenceID)))
            directives.append(.sampleTokens(requestID: request, rows: round.choices, hidden: round.hidden))
        }
        if !round.patches.isEmpty {
            let request = newRequest(.patches(round.patches.map(\.job)))
            directives.append(.samplePatches(requestID: request, patches: round.patches))
        }
        return directives + schedule()
    }

    /// What one micro-batch's output asks of the heads, gathered so each pool gets one request.
    struct OutputRound {
        var choices: [TokenChoice] = []
        var hidden: Matrix
        var patches: [PatchWork] = []
        var directives: [Directive] = []

        init(width: Int) { hidden = Matrix(rows: 0, columns: width) }

        mutating func choose(_ choice: TokenChoice, after row: [Float]) {
            choices.append(choice)
            hidden.append(rowsOf: Matrix(rows: 1, columns: row.count, values: row))
        }
    }

    /// Tokens chosen by the LM pool for a request, in its row order.
    public mutating func sampled(requestID: UInt64, tokens: [Int]) throws(Refusal) -> [Directive] {
        guard case .tokens(let ids) = outstanding[requestID] else { throw .unknownRequest(requestID) }
        guard ids.count == tokens.count else { throw .rowCount(expected: ids.count, found: tokens.count) }
        outstanding[requestID] = nil
        var directives: [Directive] = []
        for (id, token) in zip(ids, tokens) {
            guard let job = sequences[id]?.job, let state = jobs[job] else { continue }
            switch state.kind {
            case .text(let text): directives += textToken(token, job: text, sequence: id)
            case .interleaved(let interleaved): directives += interleavedToken(token, job: interleaved)
            case .image: continue
            }
        }
        return directives + schedule()
    }

    /// Patches sampled by the diffusion pool for a request, in its order, in VQ-latent scale.
    public mutating func patchesSampled(requestID: UInt64, latents: [[Float]]) throws(Refusal) -> [Directive] {
        guard case .patches(let owners) = outstanding[requestID] else { throw .unknownRequest(requestID) }
        guard owners.count == latents.count else { throw .rowCount(expected: owners.count, found: latents.count) }
        outstanding[requestID] = nil
        var directives: [Directive] = []
        for (job, latent) in zip(owners, latents) {
            // A job cancelled meanwhile is no longer known; its patch is dropped.
            guard let state = jobs[job] else { continue }
            switch state.kind {
            case .image(let image): directives += imagePatch(latent, job: image)
            case .interleaved(let interleaved): directives += interleavedPatch(latent, job: interleaved)
            case .text: continue
            }
        }
        return directives + schedule()
    }

    // MARK: - Shared by the job kinds

    func admit(_ job: UInt64, prompts: [[StageInput]], room: Int) throws(Refusal) {
        guard jobs[job] == nil else { throw .duplicateJob(job) }
        for prompt in prompts {
            guard !prompt.isEmpty else { throw .emptyPrompt(job: job) }
            guard prompt.count + room <= configuration.contextLength else {
                throw .promptTooLong(job: job, tokens: prompt.count, context: configuration.contextLength)
            }
        }
    }

    /// Ends a job: its answer goes out and its remaining sequences' caches are dropped.
    mutating func finish(_ job: UInt64, reason: FinishReason) -> [Directive] {
        guard let state = jobs.removeValue(forKey: job) else { return [] }
        let ids = sequences.filter { $0.value.job == job }.map(\.key).sorted()
        for id in ids { sequences[id] = nil }
        let answer = JobAnswer(tokens: state.tokens, pieces: state.pieces, reason: reason)
        return [.finished(job: job, answer: answer)] + (ids.isEmpty ? [] : [.release(sequences: ids)])
    }

    /// Keeps a CFG member's final row; once both members have theirs, returns them (cond, then uncond) and clears
    /// them. The two may arrive in different micro-batches when their prompts differ in length.
    mutating func pairCondition(
        storing row: [Float],
        for id: UInt64,
        cond: UInt64,
        uncond: UInt64
    ) -> (
        cond: [Float], uncond: [Float]
    )? {
        sequences[id]?.finalRow = row
        guard let condRow = sequences[cond]?.finalRow, let uncondRow = sequences[uncond]?.finalRow else { return nil }
        sequences[cond]?.finalRow = nil
        sequences[uncond]?.finalRow = nil
        return (condRow, uncondRow)
    }

    mutating func newRequest(_ kind: Outstanding) -> UInt64 {
        let id = nextRequest
        nextRequest += 1
        outstanding[id] = kind
        return id
    }
}
