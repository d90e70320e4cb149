import ClusterProtocol
import Foundation
import Generation
import Membership
import Runtime
import Tensor
import Tokenizer
import Transport
import Wire

/// A job the coordinator has accepted, with what its client is owed.
struct JobRecord {
    enum Phase: String {
        /// Waiting for a pipeline.
        case queued
        /// Image to text: the diffusion pool is encoding the picture.
        case encoding
        case running
        /// The diffusion pool is decoding the finished images.
        case decoding
    }

    let id: UInt64
    /// The connections its results stream to: the submitter's, and those of clients that fetched it since (a job
    /// restarted from the journal has none until one fetches it). A bound keeps the oldest out.
    var watchers: [[UInt8]]
    /// The public key of the client that submitted it (empty in a cluster without keys).
    let owner: String
    let spec: JobSpec
    let accepted: ContinuousClock.Instant
    var phase: Phase
    var prepared: PlannedJob?
    var detokenizer: StreamingDetokenizer
    /// Noise the client supplied, `[image][patch][latent]`.
    var noise: GivenNoise?
    /// The bytes of picture and noise it brought (held against `maxHeldInputBytes` until it ends).
    var inputBytes = 0
    /// Text streamed so far (text modes), for a client that attaches later with `fetch`.
    var streamed = ""
    var tokens = 0
    var patches = 0
    /// When its first token or patch came (for time to first output and time per token).
    var firstOutputAt: ContinuousClock.Instant?
    /// Interleaved answers: the pieces, until their images are decoded.
    var pieces: [AnswerPiece] = []
    var imagesExpected = 0
    var decodedImages: [Int: (png: [UInt8], latents: [[Float]])] = [:]
}

extension CoordinatorCore {
    // MARK: - Scheduler directives

    func apply(_ directives: [Scheduler.Directive]) {
        for directive in directives {
            switch directive {
            case .forward(let microBatch, let slices, let inputs):
                do {
                    guard pipeline.isReady else { throw JobRefusal.failed("no pipeline to run it on") }
                    let batch = StageBatch(
                        microBatch: microBatch,
                        slices: slices,
                        input: .inputs(inputs),
                        routeToken: pipeline.entryToken
                    )
                    try emitOrThrow(try batch.message(), CoordinatorAction.toPipeline)
                    batchClock.sent(microBatch, rows: inputs.count, at: now)
                    trace.sent(microBatch: microBatch, rows: inputs.count, at: wallNow())
                } catch {
                    let (jobs, more) = scheduler.abandon(microBatch: microBatch)
                    for job in jobs { fail(job, "micro-batch \(microBatch) could not be sent: \(error)") }
                    apply(more)
                }
            case .sampleTokens(let id, let rows, let hidden):
                lmPool.add(id, .tokens(TokenRequest(requestID: id, rows: rows, hidden: hidden)))
            case .samplePatches(let id, let patches):
                samplePatches(id, patches)
            case .token(let job, let token):
                guard var record = jobs[job] else { continue }
                record.tokens += 1
                metrics.tokens.increment()
                noteFirstOutput(&record)
                // Interleaved text is decoded run by run at the end, as `generate` prints it; progress only here.
                var piece = ""
                if record.spec.mode != .interleaved {
                    do {
                        piece = try record.detokenizer.push(token)
                    } catch {
                        fail(job, "token \(token) cannot be decoded: \(error)")
                        continue
                    }
                }
                record.streamed += piece
                jobs[job] = record
                notify(record, .text(job: job, piece: piece, tokens: record.tokens))
            case .patchDone(let job, let image, let done, let total, let latent):
                guard var record = jobs[job] else { continue }
                record.patches += 1
                metrics.patches.increment()
                noteFirstOutput(&record)
                jobs[job] = record
                notify(record, .patches(job: job, image: image, done: done, total: total, latent: latent))
            case .finished(let job, let answer):
                guard let record = jobs[job] else { continue }
                if record.spec.mode == .text || record.spec.mode == .imageToText {
                    finishText(job)
                } else {
                    decode(job, pieces: answer.pieces)
                }
            case .release(let sequences):
                let message = StageControl.release(sequences: sequences).message
                if pipeline.isReady {
                    let release = StageControl.release(sequences: sequences, routeToken: pipeline.entryToken)
                    emit(release.message, CoordinatorAction.toPipeline, "a cache release")
                } else {
                    // No pipeline to carry it in order: tell every stage directly.
                    for (id, worker) in info where worker.registration.role == .stage { sendToWorker(id, message) }
                }
            }
        }
        dispatch()
    }

    /// Sends patches to the diffusion pool: each with its key, from which the worker draws its noise, and the client's
    /// noise when it gave some. A job whose given noise is too short fails; the rest of the request goes ahead.
    private func samplePatches(_ id: UInt64, _ work: [PatchWork]) {
        var patches: [PatchRequest.Patch] = []
        var owners: [UInt64] = []
        var places: [Int] = []
        for (place, patch) in work.enumerated() {
            guard let record = jobs[patch.job] else { continue }
            let noise: [Float]?
            do {
                noise = try record.noise?.patch(patch.key)
            } catch {
                fail(patch.job, error.description)
                continue
            }
            owners.append(patch.job)
            places.append(place)
            patches.append(
                PatchRequest.Patch(
                    key: patch.key,
                    condition: patch.condition,
                    unconditional: patch.unconditional,
                    givenNoise: noise,
                    guidance: patch.guidance,
                    steps: patch.steps
                )
            )
        }
        guard !patches.isEmpty else {
            // Every job of the request failed: nothing to sample, and the scheduler forgets the request.
            do {
                apply(try scheduler.patchesSampled(requestID: id, latents: Array(repeating: [], count: work.count)))
            } catch {
                note("patch request \(id): \(error)")
            }
            return
        }
        let request = PatchRequest(requestID: id, patches: patches)
        diffusionPool.add(
            id,
            .patches(request, jobs: owners, places: places, asked: work.count),
            cost: WorkCost(kind: HeadWork.patchKind, units: patches.map(\.steps).max() ?? 1)
        )
    }

    /// A text job is done: the rest of its streamed text goes out, then `finished`.
    private func finishText(_ job: UInt64) {
        guard var record = jobs[job] else { return }
        let rest = record.detokenizer.finish()
        record.streamed += rest
        jobs[job] = record
        notify(record, .finished(job: job, rest: rest))
        journalEnd(job) { try $0.finished(job, text: record.streamed, pieces: [], images: []) }
        finish(job)
    }

    /// Sends a finished job's images to the diffusion pool for decoding; the result goes out once all are back.
    private func decode(_ job: UInt64, pieces: [AnswerPiece]) {
        guard var record = jobs[job] else { return }
        record.phase = .decoding
        record.pieces = pieces
        var images = 0
        for piece in pieces {
            guard case .image(let latents) = piece else { continue }
            diffusionPool.add(
                nextConversion,
                .decode(job: job, image: images, latents: latents),
                cost: WorkCost(kind: HeadWork.decodeKind)
            )
            nextConversion += 1
            images += 1
        }
        record.imagesExpected = images
        jobs[job] = record
        // Its sequences have ended on the stages (the scheduler released them): decoding needs no KV.
        releaseKV(of: job)
        if images == 0 { deliver(job) }
    }

    func decoded(job: UInt64, image: Int, latents: [[Float]], png: [UInt8]) {
        guard var record = jobs[job] else { return }
        record.decodedImages[image] = (png, latents)
        jobs[job] = record
        if record.decodedImages.count == record.imagesExpected { deliver(job) }
    }

    /// Sends an image or interleaved job's results in order (text runs and images), then `finished`. Everything is
    /// prepared first: a text run that cannot be decoded or an image that cannot be framed fails the job instead.
    private func deliver(_ job: UInt64) {
        guard let record = jobs[job] else { return }
        var messages: [WireMessage] = []
        var journaled: [JobJournal.Result.Piece] = []
        var images: [(png: [UInt8], latents: [[Float]])] = []
        do {
            for piece in record.pieces {
                switch piece {
                case .text(let ids):
                    let text = try planner.tokenizer.decode(ids)
                    messages.append(try ClientMessage.answerText(job: job, text: text).message())
                    journaled.append(.text(text))
                case .image:
                    let index = images.count
                    guard let decoded = record.decodedImages[index] else {
                        throw JobRefusal.failed("image \(index) was never decoded")
                    }
                    let image = ClientMessage.image(job: job, index: index, png: decoded.png, latents: decoded.latents)
                    messages.append(try image.message())
                    journaled.append(.image(index))
                    images.append(decoded)
                }
            }
            messages.append(try ClientMessage.finished(job: job, rest: "").message())
            for watcher in record.watchers {
                for var message in messages {
                    // A frame is consumed when it is sent: each message gets its own routing frame.
                    message.routing = [try ZMQMessage(bytes: watcher)]
                    try emitOrThrow(message, CoordinatorAction.toClient)
                }
            }
        } catch {
            fail(job, "job \(job)'s answer could not be prepared: \(error)")
            return
        }
        journalEnd(job) { try $0.finished(job, text: "", pieces: journaled, images: images) }
        finish(job)
    }

    private func finish(_ job: UInt64) {
        if let record = jobs[job], let first = record.firstOutputAt, record.tokens > 1 {
            metrics.perToken.recordNanoseconds(((now - first) / (record.tokens - 1)).nanoseconds)
        }
        jobs[job] = nil
        completed += 1
        metrics.jobsCompleted.increment()
        releaseKV(of: job)
    }

    /// Fails a job: the client gets the reason, the scheduler forgets it and the stages drop its caches.
    func fail(_ job: UInt64, _ reason: String, cancelled: Bool = false) {
        guard let record = jobs.removeValue(forKey: job) else { return }
        waiting.removeAll { $0 == job }
        if cancelled {
            self.cancelled += 1
            metrics.jobsCancelled.increment()
        } else {
            failed += 1
            metrics.jobsFailed.increment()
        }
        notify(record, .failure(job: job, reason: reason))
        journalEnd(job) { try $0.failed(job, reason: reason) }
        apply(scheduler.cancel(job: job))
        releaseKV(of: job)
    }

    private func noteFirstOutput(_ record: inout JobRecord) {
        guard record.firstOutputAt == nil else { return }
        record.firstOutputAt = now
        metrics.firstOutput(after: now - record.accepted)
    }

    /// The gauges, from the state now (every tick).
    func refreshMetrics() {
        metrics.queueDepth.record(waiting.count)
        metrics.kvReserved.record(kvReserved)
        for (phase, gauge) in metrics.phases { gauge.record(jobs.values.filter { $0.phase.rawValue == phase }.count) }
        for (gauges, pool, role) in [
            (metrics.pools[0], lmPool, WorkerRole.lmHead), (metrics.pools[1], diffusionPool, .diffusionHead),
        ] {
            gauges.workers.record(desk.machine.available(role).count)
            gauges.backlog.record(pool.backlog.count)
            gauges.outstanding.record(pool.holder.count)
        }
        for (role, gauge) in metrics.heartbeatAge {
            let ages = desk.machine.members.values.filter { member in
                guard member.status != .down else { return false }
                switch member.role {
                case .stage: return role == "stage"
                case .lmHead: return role == "lm-head"
                case .diffusionHead: return role == "diffusion-head"
                }
            }.map { (now - $0.lastHeard).seconds }
            gauge.record(ages.max() ?? 0)
        }
        for (mode, gauge) in metrics.modes { gauge.record(jobs.values.filter { $0.spec.mode == mode }.count) }
        let inFlight = batchClock.inFlightIDs
        metrics.microBatchesInFlight.record(inFlight.count)
        var passedBefore = UInt64.max  // every micro-batch has passed the coordinator
        for (index, id) in pipeline.chain.enumerated() {
            let stage = metrics.stage(index)
            stage.kvPositions.record(Int(clamping: info[id]?.load.kvPositions ?? 0))
            stage.kvBudget.record(Int(clamping: info[id]?.load.kvBudget ?? 0))
            // Stages run micro-batches in order: one has passed a stage when its id is at most the newest it ran.
            let passed = info[id]?.load.finishedMicroBatch ?? 0
            stage.inFlight.record(inFlight.filter { $0 > passed && $0 <= passedBefore }.count)
            passedBefore = passed
        }
    }

    // MARK: - Status

    /// Every member, named as a trace's lanes are.
    func traceWorkers() -> [TraceReport.Worker] {
        status().members.map { TraceReport.Worker(id: $0.id, role: $0.role, layers: $0.layers, host: $0.host) }
    }

    /// The cluster's state as `peer` may see it: a client key's own jobs only.
    func status(for peer: PeerIdentity = .anonymous) -> StatusReport {
        let members = desk.members.values.sorted { $0.id < $1.id }.map { member -> StatusReport.MemberRow in
            let registration = info[member.id]?.registration
            var role = "diffusion-head"
            var layers: String?
            switch member.role {
            case .stage(let range):
                role = "stage"
                layers = "\(range.lowerBound)..<\(range.upperBound)"
            case .lmHead: role = "lm-head"
            case .diffusionHead: break
            }
            return StatusReport.MemberRow(
                id: member.id.value,
                role: role,
                layers: layers,
                key: member.key,
                host: registration?.host ?? "",
                endpoint: registration.flatMap { $0.dataEndpoint.isEmpty ? nil : $0.dataEndpoint },
                state: "\(member.status)",
                outstanding: lmPool.load(of: member.id) + diffusionPool.load(of: member.id),
                busySeconds: member.busy.seconds,
                refusedInputs: info[member.id]?.load.refusedInputs ?? 0,
                kvPositions: info[member.id]?.load.kvPositions ?? 0,
                kvBudget: info[member.id]?.load.kvBudget ?? 0,
                kvReserved: pipeline.chain.contains(member.id) ? UInt64(kvReserved) : 0,
                slow: slowStages.contains(member.id) || lmPool.slow.contains(member.id)
                    || diffusionPool.slow.contains(member.id)
            )
        }
        let visible = jobs.values.filter { may(peer, actOn: $0.owner) }
        let rows = visible.sorted { $0.id < $1.id }.map { record in
            StatusReport.JobRow(
                id: record.id,
                mode: "\(record.spec.mode)",
                phase: record.phase.rawValue,
                tokens: record.tokens,
                patches: record.patches,
                seconds: (now - record.accepted).seconds
            )
        }
        var report = StatusReport(
            ready: pipeline.isReady && !desk.machine.available(.lmHead).isEmpty
                && !desk.machine.available(.diffusionHead).isEmpty,
            pipeline: pipeline.isReady ? pipeline.chain.map(\.value) : [],
            members: members,
            jobs: rows,
            queued: waiting.count,
            lmBacklog: lmPool.backlog.count,
            diffusionBacklog: diffusionPool.backlog.count,
            completedJobs: completed,
            failedJobs: failed,
            rejectedClientMessages: rejectedClient,
            rejectedWorkerMessages: rejectedWorker
        )
        report.instance = instance
        report.kvReserved = kvReserved
        report.cancelledJobs = cancelled
        let counts = inboxCounts()
        report.droppedClientMessages = counts.client
        report.droppedWorkerMessages = counts.worker
        report.floodingClients = counts.topClients.map { StatusReport.FloodRow(peer: $0.peer, dropped: $0.dropped) }
        return report
    }
}
