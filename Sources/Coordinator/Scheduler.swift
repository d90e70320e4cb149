import Heads
import Model
import Stage
import Tensor

/// Iteration-level scheduling of many jobs over a pipeline of stages (Orca/vLLM-style continuous batching), as a
/// pure state machine: inputs are submissions, stage outputs and head results; outputs are directives for the
/// coordinator's shell. A sequence is in at most one micro-batch at a time, prompts are prefilled in chunks so one
/// long prompt cannot stall the others, as many micro-batches are kept in flight as the pipeline is deep, and a CFG
/// pair travels in one micro-batch whenever both are ready.
///
/// Each sequence belongs to a lane, one per micro-batch the pipeline holds, and a lane has at most one micro-batch in
/// flight (vLLM's virtual engines do the same). Without lanes, whichever sequences happened to be ready formed the
/// next micro-batch, and arrival order fixed the groups for good: eight jobs on two stages ran as micro-batches of 1,
/// 1 and 6 rows in turn, so each stage read its weights three times per round instead of twice. New sequences join
/// the lane with the fewest, and lanes are evened out as sequences finish or the depth changes.
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
        /// Ask the diffusion pool for one patch: `condition` holds the cond and uncond final states. Its noise is keyed
        /// by (seed, image, patch).
        case samplePatch(
            requestID: UInt64,
            job: UInt64,
            image: Int,
            patch: Int,
            condition: Matrix,
            guidance: Float,
            steps: Int,
            seed: UInt64
        )
        /// A job produced a token (stream it to the client).
        case token(job: UInt64, token: Int)
        /// An image job finished a patch.
        case patchDone(job: UInt64, done: Int, total: Int)
        /// A text job is done.
        case finished(job: UInt64, tokens: [Int], reason: FinishReason)
        /// An image job is done: its latents in raster order.
        case finishedImage(job: UInt64, latents: [[Float]])
        /// An interleaved job is done: its text runs and images in order.
        case finishedInterleaved(job: UInt64, pieces: [AnswerPiece])
        /// Drop these sequences' KV caches on every stage.
        case release(sequences: [UInt64])
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
            case .unknownRequest(let id): "no head request \(id) is outstanding"
            case .rowCount(let expected, let found): "expected \(expected) rows, got \(found)"
            }
        }
    }

    private enum Work {
        case text(TextJob, generated: [Int])
        case image(ImageJob, latents: [[Float]], cond: UInt64, uncond: UInt64)
        case interleaved(InterleavedJob, Answer)
    }

    /// Where an interleaved job is.
    private struct Answer {
        enum Phase: Equatable {
            case text
            /// Sampling image patches with this uncond sequence.
            case image(uncond: UInt64)
            /// The last latent was fed to the cond sequence; EOI is forced next.
            case closing
        }
        var cond: UInt64
        var phase = Phase.text
        var generated = 0
        var pieces: [AnswerPiece] = []
        var textRun: [Int] = []
        var latents: [[Float]] = []
        var images = 0
    }

    private struct Sequence {
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
        var finalRow: Matrix?
        /// The lane whose micro-batches carry it (its partner's too).
        var lane = 0

        /// Whether it can join a micro-batch: inputs waiting, not in flight, and not waiting on a head, except to
        /// replay inputs whose answer it already has.
        var isReady: Bool { !inBatch && !pending.isEmpty && (!awaitingHead || suppressAt != nil) }
    }

    private enum Outstanding {
        case tokens([UInt64])
        case patch(job: UInt64)
    }

    public private(set) var configuration: Configuration
    private var jobs: [UInt64: Work] = [:]
    private var sequences: [UInt64: Sequence] = [:]
    /// A micro-batch between the first stage and the heads.
    private struct Flight {
        let lane: Int
        let slices: [SequenceSlice]
    }
    private var inFlight: [UInt64: Flight] = [:]
    private var outstanding: [UInt64: Outstanding] = [:]
    private var nextSequence: UInt64 = 1
    private var nextMicroBatch: UInt64 = 1
    private var nextRequest: UInt64 = 1
    private var tick: UInt64 = 0

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

    // MARK: - Inputs

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
        outstanding = outstanding.filter { _, kind in
            if case .patch(let owner) = kind { return owner != job }
            return true
        }
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
            guard var sequence = sequences[id] else { continue }
            if sequence.awaitingHead { sequence.suppressAt = sequence.history.count }
            sequence.pending = sequence.history + sequence.pending
            sequence.history = []
            sequence.position = 0
            sequence.inBatch = false
            sequences[id] = sequence
        }
        let ids = sequences.keys.sorted()
        return (ids.isEmpty ? [] : [.release(sequences: ids)]) + schedule()
    }

    /// Whether scheduling waits for a replay.
    public private(set) var paused = false

    /// Accepts a text job and schedules what can run.
    public mutating func submit(_ job: TextJob) throws(Refusal) -> [Directive] {
        try admit(job.id, prompts: [job.prompt], room: 1)
        _ = newSequence(job: job.id, prompt: job.prompt)
        jobs[job.id] = .text(job, generated: [])
        return schedule()
    }

    /// Accepts a text-to-image job (a cond/uncond pair) and schedules what can run.
    public mutating func submit(_ job: ImageJob) throws(Refusal) -> [Directive] {
        try admit(
            job.id,
            prompts: [job.prompt.map(StageInput.token), job.nullPrompt.map(StageInput.token)],
            room: job.patches - 1
        )
        let cond = newSequence(job: job.id, prompt: job.prompt.map(StageInput.token))
        let uncond = newSequence(job: job.id, prompt: job.nullPrompt.map(StageInput.token), partner: cond)
        sequences[cond]?.partner = uncond
        sequences[uncond]?.partner = cond
        jobs[job.id] = .image(job, latents: [], cond: cond, uncond: uncond)
        return schedule()
    }

    /// Accepts an interleaved job and schedules what can run.
    public mutating func submit(_ job: InterleavedJob) throws(Refusal) -> [Directive] {
        try admit(job.id, prompts: [job.prompt.map(StageInput.token)], room: 1)
        let cond = newSequence(job: job.id, prompt: job.prompt.map(StageInput.token))
        jobs[job.id] = .interleaved(job, Answer(cond: cond))
        return schedule()
    }

    /// The last stage's rows for a micro-batch: one final-normed row per slice, in slice order.
    public mutating func stageOutput(microBatch: UInt64, lastRows: Matrix) throws(Refusal) -> [Directive] {
        guard let slices = inFlight.removeValue(forKey: microBatch)?.slices else {
            throw .unknownMicroBatch(microBatch)
        }
        guard lastRows.rows == slices.count else { throw .rowCount(expected: slices.count, found: lastRows.rows) }
        var choices: [TokenChoice] = []
        var hidden = Matrix(rows: 0, columns: lastRows.columns)
        var waiting: [UInt64] = []
        var directives: [Directive] = []
        for (index, slice) in slices.enumerated() {
            guard var sequence = sequences[slice.sequenceID], let work = jobs[sequence.job] else { continue }
            sequence.inBatch = false
            if let end = sequence.suppressAt, sequence.position >= end {
                // A replay reached the position whose output was answered before the stage was lost: not again.
                sequence.suppressAt = nil
                if sequence.position == end {
                    sequences[slice.sequenceID] = sequence
                    continue
                }
            }
            // Mid-prompt (or mid-replay) rows only fill the caches.
            guard sequence.pending.isEmpty else {
                sequences[slice.sequenceID] = sequence
                continue
            }
            sequence.awaitingHead = true
            sequences[slice.sequenceID] = sequence
            let row = lastRows.rows(index..<(index + 1))
            switch work {
            case .text(let job, let generated):
                choices.append(
                    TokenChoice(
                        sequenceID: slice.sequenceID,
                        sampling: job.options.sampling,
                        seed: job.options.seed,
                        counter: UInt64(generated.count),
                        mask: job.options.mask
                    )
                )
                hidden.append(rowsOf: row)
                waiting.append(slice.sequenceID)
            case .image(let job, let latents, let cond, let uncond):
                sequences[slice.sequenceID] = sequence
                if let condition = pairCondition(storing: row, for: slice.sequenceID, cond: cond, uncond: uncond) {
                    let request = newRequest(.patch(job: job.id))
                    directives.append(
                        .samplePatch(
                            requestID: request,
                            job: job.id,
                            image: 0,
                            patch: latents.count,
                            condition: condition,
                            guidance: job.guidance,
                            steps: job.steps,
                            seed: job.seed
                        )
                    )
                }
            case .interleaved(let job, var answer):
                switch answer.phase {
                case .text:
                    // As the engine's loop: no token is chosen once the budget or the context is used up.
                    if answer.generated >= job.maxTokens || sequence.position >= configuration.contextLength {
                        if !answer.textRun.isEmpty { answer.pieces.append(.text(answer.textRun)) }
                        jobs[job.id] = nil
                        sequences[slice.sequenceID] = nil
                        directives += [
                            .finishedInterleaved(job: job.id, pieces: answer.pieces),
                            .release(sequences: [slice.sequenceID]),
                        ]
                        continue
                    }
                    var mask = job.mask
                    let fits =
                        answer.generated + job.patches + 2 <= job.maxTokens
                        && sequence.position + job.patches + 2 <= configuration.contextLength
                    if fits { mask.banned.removeAll { $0 == job.boi..<(job.boi + 1) } }
                    choices.append(
                        TokenChoice(
                            sequenceID: slice.sequenceID,
                            sampling: job.sampling,
                            seed: job.seed,
                            counter: UInt64(answer.generated),
                            mask: mask
                        )
                    )
                    hidden.append(rowsOf: row)
                    waiting.append(slice.sequenceID)
                case .image(let uncond):
                    sequences[slice.sequenceID] = sequence
                    if let condition = pairCondition(
                        storing: row,
                        for: slice.sequenceID,
                        cond: answer.cond,
                        uncond: uncond
                    ) {
                        directives.append(
                            .samplePatch(
                                requestID: newRequest(.patch(job: job.id)),
                                job: job.id,
                                image: answer.images,
                                patch: answer.latents.count,
                                condition: condition,
                                guidance: job.guidance,
                                steps: job.steps,
                                seed: job.seed
                            )
                        )
                    }
                case .closing:
                    // The last latent is in: EOI is forced (no head call) and text continues after it.
                    answer.generated += 1
                    answer.phase = .text
                    directives.append(.token(job: job.id, token: job.eoi))
                    sequence.pending.append(.token(job.eoi))
                    sequence.awaitingHead = false
                    sequences[slice.sequenceID] = sequence
                    jobs[job.id] = .interleaved(job, answer)
                }
            }
        }
        if !choices.isEmpty {
            directives.append(.sampleTokens(requestID: newRequest(.tokens(waiting)), rows: choices, hidden: hidden))
        }
        return directives + schedule()
    }

    /// Tokens chosen by the LM pool for a request, in its row order.
    public mutating func sampled(requestID: UInt64, tokens: [Int]) throws(Refusal) -> [Directive] {
        guard case .tokens(let ids) = outstanding[requestID] else { throw .unknownRequest(requestID) }
        guard ids.count == tokens.count else { throw .rowCount(expected: ids.count, found: tokens.count) }
        outstanding[requestID] = nil
        var directives: [Directive] = []
        for (id, token) in zip(ids, tokens) {
            guard var sequence = sequences[id], let work = jobs[sequence.job] else { continue }
            if case .interleaved(let job, let answer) = work {
                directives += interleavedToken(token, job: job, answer: answer)
                continue
            }
            guard case .text(let job, var generated) = work else { continue }
            generated.append(token)
            directives.append(.token(job: job.id, token: token))
            let reason: FinishReason? =
                job.options.stopIDs.contains(token)
                ? .stopToken(token)
                : generated.count >= job.options.maxTokens
                    ? .maxTokens
                    : sequence.position >= configuration.contextLength ? .contextFull : nil
            if let reason {
                jobs[job.id] = nil
                sequences[id] = nil
                directives += [.finished(job: job.id, tokens: generated, reason: reason), .release(sequences: [id])]
            } else {
                jobs[job.id] = .text(job, generated: generated)
                sequence.pending.append(.token(token))
                sequence.awaitingHead = false
                sequences[id] = sequence
            }
        }
        return directives + schedule()
    }

    /// A patch sampled by the diffusion pool, in VQ-latent scale.
    public mutating func patchSampled(requestID: UInt64, latent: [Float]) throws(Refusal) -> [Directive] {
        guard case .patch(let jobID) = outstanding[requestID], let work = jobs[jobID] else {
            throw .unknownRequest(requestID)
        }
        outstanding[requestID] = nil
        if case .interleaved(let job, let answer) = work {
            return interleavedPatch(latent, job: job, answer: answer) + schedule()
        }
        guard case .image(let job, var latents, let cond, let uncond) = work else { throw .unknownRequest(requestID) }
        latents.append(latent)
        var directives: [Directive] = [.patchDone(job: jobID, done: latents.count, total: job.patches)]
        if latents.count == job.patches {
            // The last latent is not fed back (the reference returns right after sampling it).
            jobs[jobID] = nil
            sequences[cond] = nil
            sequences[uncond] = nil
            directives += [.finishedImage(job: jobID, latents: latents), .release(sequences: [cond, uncond])]
        } else {
            jobs[jobID] = .image(job, latents: latents, cond: cond, uncond: uncond)
            for id in [cond, uncond] {
                sequences[id]?.pending.append(.latent(latent))
                sequences[id]?.awaitingHead = false
            }
        }
        return directives + schedule()
    }

    /// Keeps a CFG member's final row; once both members have theirs, returns them (cond, then uncond) and clears
    /// them. The two may arrive in different micro-batches when their prompts differ in length.
    private mutating func pairCondition(storing row: Matrix, for id: UInt64, cond: UInt64, uncond: UInt64) -> Matrix? {
        sequences[id]?.finalRow = row
        guard let condRow = sequences[cond]?.finalRow, let uncondRow = sequences[uncond]?.finalRow else { return nil }
        sequences[cond]?.finalRow = nil
        sequences[uncond]?.finalRow = nil
        var condition = condRow
        condition.append(rowsOf: uncondRow)
        return condition
    }

    // MARK: - Interleaved jobs

    private mutating func interleavedToken(_ token: Int, job: InterleavedJob, answer: Answer) -> [Directive] {
        var answer = answer
        answer.generated += 1
        let cond = answer.cond
        let position = sequences[cond]?.position ?? 0
        let stop = job.stopIDs.contains(token)
        if stop || (token != job.boi && (answer.generated >= job.maxTokens || position >= configuration.contextLength))
        {
            if !stop { answer.textRun.append(token) }
            if !answer.textRun.isEmpty { answer.pieces.append(.text(answer.textRun)) }
            jobs[job.id] = nil
            sequences[cond] = nil
            return [
                .token(job: job.id, token: token), .finishedInterleaved(job: job.id, pieces: answer.pieces),
                .release(sequences: [cond]),
            ]
        }
        if token == job.boi {
            if !answer.textRun.isEmpty { answer.pieces.append(.text(answer.textRun)) }
            answer.textRun = []
            // A fresh unconditional sequence for this image, paired with the cond sequence.
            let uncond = newSequence(job: job.id, prompt: job.nullPrompt.map(StageInput.token), partner: cond)
            sequences[uncond]?.partner = cond
            sequences[cond]?.partner = uncond
            answer.phase = .image(uncond: uncond)
        } else {
            answer.textRun.append(token)
        }
        sequences[cond]?.pending.append(.token(token))
        sequences[cond]?.awaitingHead = false
        jobs[job.id] = .interleaved(job, answer)
        return [.token(job: job.id, token: token)]
    }

    private mutating func interleavedPatch(_ latent: [Float], job: InterleavedJob, answer: Answer) -> [Directive] {
        var answer = answer
        guard case .image(let uncond) = answer.phase else { return [] }
        answer.latents.append(latent)
        var directives: [Directive] = [.patchDone(job: job.id, done: answer.latents.count, total: job.patches)]
        if answer.latents.count < job.patches {
            for id in [answer.cond, uncond] {
                sequences[id]?.pending.append(.latent(latent))
                sequences[id]?.awaitingHead = false
            }
        } else {
            // The last latent goes to the cond sequence only; this image's uncond sequence is done.
            sequences[uncond] = nil
            sequences[answer.cond]?.partner = nil
            sequences[answer.cond]?.pending.append(.latent(latent))
            sequences[answer.cond]?.awaitingHead = false
            directives.append(.release(sequences: [uncond]))
            answer.pieces.append(.image(answer.latents))
            answer.latents = []
            answer.images += 1
            answer.generated += job.patches
            answer.phase = .closing
        }
        jobs[job.id] = .interleaved(job, answer)
        return directives
    }

    // MARK: - Scheduling

    private func admit(_ job: UInt64, prompts: [[StageInput]], room: Int) throws(Refusal) {
        guard jobs[job] == nil else { throw .duplicateJob(job) }
        for prompt in prompts {
            guard !prompt.isEmpty else { throw .emptyPrompt(job: job) }
            guard prompt.count + room <= configuration.contextLength else {
                throw .promptTooLong(job: job, tokens: prompt.count, context: configuration.contextLength)
            }
        }
    }

    /// A sequence in the lane with the fewest, or in its CFG partner's lane.
    private mutating func newSequence(job: UInt64, prompt: [StageInput], partner: UInt64? = nil) -> UInt64 {
        let id = nextSequence
        nextSequence += 1
        var sequence = Sequence(job: job, pending: prompt)
        sequence.lane = partner.flatMap { sequences[$0]?.lane } ?? lightestLane(laneLoads())
        sequences[id] = sequence
        return id
    }

    /// Sequences per lane (those on lanes past the depth are not counted).
    private func laneLoads() -> [Int] {
        var loads = [Int](repeating: 0, count: configuration.pipelineDepth)
        for sequence in sequences.values where sequence.lane < loads.count { loads[sequence.lane] += 1 }
        return loads
    }

    private func lightestLane(_ loads: [Int]) -> Int {
        loads.indices.min { (loads[$0], $0) < (loads[$1], $1) } ?? 0
    }

    /// Moves sequences (each with its CFG partner) that are not in a micro-batch: off lanes the depth no longer has,
    /// then from the fullest lane to the emptiest while that narrows the gap.
    private mutating func balanceLanes() {
        let ids = sequences.keys.sorted()
        func movable(_ id: UInt64) -> Bool {
            guard let sequence = sequences[id], !sequence.inBatch else { return false }
            return sequence.partner.map { sequences[$0]?.inBatch != true } ?? true
        }
        func move(_ id: UInt64, to lane: Int) {
            sequences[id]?.lane = lane
            if let partner = sequences[id]?.partner { sequences[partner]?.lane = lane }
        }
        for id in ids where sequences[id]!.lane >= configuration.pipelineDepth && movable(id) {
            move(id, to: lightestLane(laneLoads()))
        }
        while true {
            let loads = laneLoads()
            let light = lightestLane(loads)
            guard let heavy = loads.indices.max(by: { (loads[$0], -$0) < (loads[$1], -$1) }) else { return }
            let gap = loads[heavy] - loads[light]
            let candidate = ids.first { id in
                guard let sequence = sequences[id], sequence.lane == heavy, movable(id) else { return false }
                return (sequence.partner == nil ? 1 : 2) < gap
            }
            guard let id = candidate else { return }
            move(id, to: light)
        }
    }

    private mutating func newRequest(_ kind: Outstanding) -> UInt64 {
        let id = nextRequest
        nextRequest += 1
        outstanding[id] = kind
        return id
    }

    /// Forms a micro-batch for each lane that has none in flight: its ready sequences, least recently scheduled first,
    /// each with one slice (its next input, or its next prompt chunk); a ready CFG partner joins the same micro-batch.
    private mutating func schedule() -> [Directive] {
        var directives: [Directive] = []
        guard !paused else { return [] }
        balanceLanes()
        // A lane also waits for its token answers: a sequence answered while the rest of its lane is still out would
        // otherwise go alone in the next micro-batch, and the lane would split in two for good. (Patches take many
        // DDIM steps, so a lane does not wait for them; an image sequence rejoins its lane's next micro-batch.)
        var busy = Set(inFlight.values.map(\.lane))
        for case .tokens(let ids) in outstanding.values {
            for id in ids { if let lane = sequences[id]?.lane { busy.insert(lane) } }
        }
        for lane in 0..<configuration.pipelineDepth where !busy.contains(lane) {
            guard inFlight.count < configuration.pipelineDepth else { break }
            let ready = sequences.filter { $0.value.isReady && $0.value.lane == lane }
                .sorted { ($0.value.lastScheduled, $0.key) < ($1.value.lastScheduled, $1.key) }.map(\.key)
            guard !ready.isEmpty else { continue }
            var slices: [SequenceSlice] = []
            var inputs: [StageInput] = []
            var taken = Set<UInt64>()
            tick += 1
            for id in ready where !taken.contains(id) {
                var group = [id]
                if let partner = sequences[id]?.partner, ready.contains(partner), !taken.contains(partner) {
                    group.append(partner)
                }
                // A pair shares a micro-batch, so each member takes at most half of it: an empty one always fits both.
                let chunk =
                    group.count == 2
                    ? min(configuration.prefillChunk, configuration.maxRows / 2) : configuration.prefillChunk
                let counts = group.map { min(sequences[$0]!.pending.count, chunk) }
                let room = configuration.maxRows - inputs.count
                guard room > 0 else { break }
                // A pair goes in whole or waits for the next micro-batch; a lone sequence takes what room there is.
                if group.count == 2 && counts.reduce(0, +) > room { continue }
                for (member, count) in zip(group, counts) {
                    var sequence = sequences[member]!
                    let rows = min(count, configuration.maxRows - inputs.count)
                    slices.append(SequenceSlice(sequenceID: member, start: sequence.position, count: rows))
                    inputs += sequence.pending.prefix(rows)
                    sequence.history += sequence.pending.prefix(rows)
                    sequence.pending.removeFirst(rows)
                    sequence.position += rows
                    sequence.inBatch = true
                    sequence.lastScheduled = tick
                    sequences[member] = sequence
                    taken.insert(member)
                }
            }
            guard !slices.isEmpty else { continue }
            let id = nextMicroBatch
            nextMicroBatch += 1
            inFlight[id] = Flight(lane: lane, slices: slices)
            directives.append(.forward(microBatch: id, slices: slices, inputs: inputs))
        }
        return directives
    }
}
