import ClusterProtocol
import Foundation
import Generation
import Membership
import Tensor
import Tokenizer
import Transport
import Wire

/// Client messages: submit, status, fetch, cancel; starting accepted jobs.
extension CoordinatorCore {
    // MARK: - Client messages

    func handleClient(_ frames: [ZMQMessage], from peer: PeerIdentity) {
        let request: ClientMessage
        let routing = frames.first?.bytes ?? []
        do {
            let message = try WireMessage.parse(frames, routingFrames: 1)
            request = try ClientMessage(message)
        } catch {
            if frames.count > 1 { refuseClient(routing, job: 0, error) } else { rejectedClient += 1 }
            return
        }
        switch request {
        case .submit(let spec, let picture, let noise):
            submit(spec, picture: picture, noise: noise, from: routing, peer: peer)
        case .status:
            do {
                let json = String(decoding: try JSONEncoder().encode(status(for: peer)), as: UTF8.self)
                reply(to: routing, .statusReport(json: json))
            } catch {
                refuseClient(routing, job: 0, error)
            }
        case .fetch(let job):
            fetch(job, for: routing, peer: peer)
        case .trace(let since):
            do {
                let report = trace.report(since: since, workers: traceWorkers())
                reply(
                    to: routing,
                    .traceReport(json: String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
                )
            } catch {
                refuseClient(routing, job: 0, error)
            }
        case .cancel(let job):
            // Without keys nobody is proven, so only the connection that streams the job may cancel it.
            guard let record = jobs[job],
                peer.role == nil ? record.watchers.contains(routing) : may(peer, actOn: record.owner)
            else {
                refuseClient(routing, job: job, JobRefusal.unknownJob(job))
                return
            }
            fail(job, "job \(job) was cancelled by its client", cancelled: true)
        default:
            refuseClient(routing, job: 0, WorkerMessageError.notFromAClient(request.kind.rawValue))
        }
    }

    /// Whether `peer` may see, fetch or cancel a job its `owner` submitted: its own, or any for an admin key (and in a
    /// cluster without keys, where nobody can be told apart). Another client's job is "unknown" to it.
    func may(_ peer: PeerIdentity, actOn owner: String) -> Bool {
        peer.actsOnAllJobs || owner == peer.jobOwner
    }

    /// Sends a job's progress or result to every connection that follows it.
    func notify(_ record: JobRecord, _ message: ClientMessage) {
        for watcher in record.watchers { reply(to: watcher, message) }
    }

    func refuseClient(_ routing: [UInt8], job: UInt64, _ error: any Error) {
        rejectedClient += 1
        metrics.refusedClient.increment()
        reply(to: routing, .failure(job: job, reason: "\(error)"))
    }

    /// Sends to a client; a job restarted from the journal has none until `fetch` attaches one. A message that cannot
    /// be framed is a bug in this process: it is logged and counted, and the client's timeout tells it.
    func reply(to routing: [UInt8], _ message: ClientMessage) {
        do {
            try replyOrThrow(to: routing, message)
        } catch {
            unsent += 1
            note("could not send a kind \(message.kind.rawValue) message to a client: \(error)")
        }
    }

    /// Sends to a client, throwing when the message cannot be framed (its job then fails with the reason).
    func replyOrThrow(to routing: [UInt8], _ message: ClientMessage) throws {
        guard !routing.isEmpty else { return }
        var framed = try message.message()
        framed.routing = [try ZMQMessage(bytes: routing)]
        try emitOrThrow(framed, CoordinatorAction.toClient)
    }

    func submit(
        _ spec: JobSpec,
        picture: [UInt8]?,
        noise tensor: NoiseTensor?,
        from routing: [UInt8],
        peer: PeerIdentity
    ) {
        let owner = peer.jobOwner
        do {
            do {
                try planner.validate(spec.request)
            } catch {
                throw JobRefusal.invalid(error.description)
            }
            // A submission sent again (no acceptance reached its client) is the job it already is.
            if let job = submissions.job(owner: owner, submission: spec.submission) {
                resubmitted(job, from: routing, peer: peer)
                return
            }
            guard jobs.count < options.maxJobs else { throw JobRefusal.full(limit: options.maxJobs) }
            if spec.mode == .imageToText, picture == nil {
                throw JobRefusal.invalid("an image-to-text job carries its PNG as a uint8 tensor named 'image'")
            }
            if let shape = tensor?.shape {
                do {
                    try planner.validateNoise(shape: shape, for: spec.request)
                } catch {
                    throw JobRefusal.invalid(error.description)
                }
            }
            let noise = tensor.map { (shape: $0.shape, values: $0.values) }
            let png = spec.mode == .imageToText ? picture : nil
            let id = nextJob
            var record = try makeRecord(id: id, spec: spec, noise: noise, client: routing, owner: owner)
            record.inputBytes = (png?.count ?? 0) + (noise?.values.count ?? 0) * MemoryLayout<Float>.size
            let held = heldInputBytes
            guard held + record.inputBytes <= options.maxHeldInputBytes else {
                throw JobRefusal.inputsFull(needed: record.inputBytes, held: held, limit: options.maxHeldInputBytes)
            }
            // A job that could never fit the pipeline's KV is refused now, not after it waited its turn.
            if let needed = record.prepared?.kvPositions, let budget = pipelineKVBudget, needed > budget.positions {
                throw JobRefusal.neverFits(needed: needed, stage: budget.stage, budget: budget.positions)
            }
            // Journaled before it is acknowledged: an accepted job survives a coordinator restart.
            try journal?.accepted(id, spec: spec, owner: owner, png: png, noise: noise)
            nextJob += 1
            jobs[id] = record
            submissions.record(owner: owner, submission: spec.submission, job: id)
            reply(to: routing, .accepted(job: id, prompt: spec.prompt, queuedAhead: waiting.count))
            start(id, png: png)
        } catch {
            refuseClient(routing, job: 0, error)
        }
    }

    /// A submit repeated with an id this client's key already submitted: a connection that follows the job already
    /// gets its stream (nothing is sent twice); another (the client's, after a coordinator restart) attaches as a
    /// fetch does.
    private func resubmitted(_ job: UInt64, from routing: [UInt8], peer: PeerIdentity) {
        if let record = jobs[job], record.watchers.contains(routing) { return }
        fetch(job, for: routing, peer: peer)
    }

    /// The pictures and noise accepted jobs hold.
    var heldInputBytes: Int { jobs.values.reduce(0) { $0 + $1.inputBytes } }

    /// A job's record, with the scheduler's job prepared (image to text: once its picture is encoded).
    func makeRecord(
        id: UInt64,
        spec: JobSpec,
        noise: (shape: [Int], values: [Float])?,
        client: [UInt8],
        owner: String
    ) throws -> JobRecord {
        var record = JobRecord(
            id: id,
            watchers: client.isEmpty ? [] : [client],
            owner: owner,
            spec: spec,
            accepted: now,
            phase: .queued,
            detokenizer: StreamingDetokenizer(tokenizer: planner.tokenizer),
            noise: try noise.map { try GivenNoise(shape: $0.shape, values: $0.values) }
        )
        if spec.mode == .imageToText {
            record.phase = .encoding
        } else {
            record.prepared = try planner.plan(id: id, spec.request)
        }
        return record
    }

    /// Starts an accepted job: its picture to the diffusion pool for encoding, or the job to the queue.
    func start(_ id: UInt64, png: [UInt8]?) {
        if let png {
            diffusionPool.add(nextConversion, .encode(job: id, png: png), cost: WorkCost(kind: HeadWork.encodeKind))
            nextConversion += 1
            dispatch()
        } else {
            waiting.append(id)
            startWaitingJobs()
        }
    }

    /// The diffusion pool encoded an image-to-text job's picture: the job can start.
    func encoded(job id: UInt64, latents: Matrix) {
        guard var record = jobs[id] else { return }
        do {
            record.prepared = try planner.imageQuestionJob(id: id, record.spec.request, latents: latents)
            record.phase = .queued
            jobs[id] = record
            waiting.append(id)
            startWaitingJobs()
        } catch {
            fail(id, "\(error)")
        }
    }

    /// Hands queued jobs to the scheduler once a pipeline is ready, while their KV fits: each job reserves the positions
    /// it can hold on every stage (`PlannedJob.kvPositions`) against the smallest budget the pipeline's stages
    /// declared, until its sequences end. The next to start is the oldest waiting job of the client running the fewest
    /// (so one client's burst does not hold the others' jobs behind it); when it does not fit, nothing behind it starts
    /// either (a long job is not overtaken forever). One that could never fit fails with the numbers. The queue is
    /// bounded by `maxJobs`.
    func startWaitingJobs() {
        guard pipeline.isReady else { return }
        let budget = pipelineKVBudget
        while let index = nextWaitingIndex() {
            let id = waiting[index]
            guard var record = jobs[id], let prepared = record.prepared else {
                waiting.remove(at: index)
                continue
            }
            let needed = prepared.kvPositions
            if let budget {
                guard needed <= budget.positions else {
                    waiting.remove(at: index)
                    fail(
                        id,
                        JobRefusal.neverFits(needed: needed, stage: budget.stage, budget: budget.positions).description
                    )
                    continue
                }
                guard kvReserved + needed <= budget.positions else { return }
            }
            waiting.remove(at: index)
            reservedKV[id] = needed
            kvReserved += needed
            record.phase = .running
            jobs[id] = record
            do {
                apply(try scheduler.submit(prepared))
            } catch {
                fail(id, error.description)
            }
        }
    }

    /// Where in `waiting` the next job to start is: the oldest of the client (owner key; without keys, the submitting
    /// connection) with the fewest jobs holding KV.
    private func nextWaitingIndex() -> Int? {
        guard waiting.count > 1 else { return waiting.isEmpty ? nil : 0 }
        var running: [String: Int] = [:]
        for job in reservedKV.keys { if let record = jobs[job] { running[client(of: record), default: 0] += 1 } }
        var best: (index: Int, running: Int)?
        var seen: Set<String> = []
        for (index, id) in waiting.enumerated() {
            let client = jobs[id].map(client(of:)) ?? ""
            guard seen.insert(client).inserted else { continue }
            let count = running[client] ?? 0
            if best == nil || count < best!.running { best = (index, count) }
        }
        return best?.index
    }

    private func client(of record: JobRecord) -> String {
        guard record.owner.isEmpty else { return "key " + record.owner }
        return "connection " + (record.watchers.first ?? []).map { String($0, radix: 16) }.joined(separator: ".")
    }

    /// The smallest KV budget among the pipeline's stages, as their heartbeats declared it (nil until one has).
    var pipelineKVBudget: (stage: WorkerID, positions: Int)? {
        pipeline.chain.compactMap { id -> (stage: WorkerID, positions: Int)? in
            guard let budget = info[id]?.load.kvBudget, budget > 0 else { return nil }
            return (id, Int(clamping: budget))
        }.min { $0.positions < $1.positions }
    }

    /// A job's sequences ended (or it failed): its KV reservation is free for the jobs waiting.
    func releaseKV(of job: UInt64) {
        guard let positions = reservedKV.removeValue(forKey: job) else { return }
        kvReserved -= positions
        startWaitingJobs()
    }
}
