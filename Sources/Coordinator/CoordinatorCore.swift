import ClusterProtocol
import Foundation
import Generation
import Membership
import Tensor
import Transport
import Wire

/// Work the coordinator sends to a head pool, kept until answered so it can be re-sent if its worker is lost.
enum HeadWork: Sendable {
    case tokens(TokenRequest)
    /// Patches of several jobs (the pairs one micro-batch completed): the jobs of the patches sent, and each one's place
    /// among the `asked` patches of the scheduler's request (a job that failed meanwhile has none).
    case patches(PatchRequest, jobs: [UInt64], places: [Int], asked: Int)
    case decode(job: UInt64, image: Int, latents: [[Float]])
    case encode(job: UInt64, png: [UInt8])

    func message(id: UInt64) throws -> WireMessage {
        switch self {
        case .tokens(let request): try request.message()
        case .patches(let request, _, _, _): try request.message()
        case .decode(let job, _, let latents):
            try DecodeRequest(
                requestID: id,
                job: job,
                latents: Matrix(rows: latents.count, columns: latents.first?.count ?? 0, values: latents.flatMap { $0 })
            ).message()
        case .encode(let job, let png): try EncodeRequest(requestID: id, job: job, png: png).message()
        }
    }
}

/// A registered worker as the coordinator addresses it.
struct WorkerInfo {
    var registration: Registration
    /// The routing id of its data socket, once it said hello.
    var peer: [UInt8]?
}

/// The pipeline being formed or in use.
struct PipelineState {
    var chain: [WorkerID] = []
    /// Stages that have not yet confirmed their route.
    var awaitingRoute: Set<WorkerID> = []
    /// The PUSH socket to the first stage.
    var entry: SocketPump?

    var isReady: Bool { !chain.isEmpty && awaitingRoute.isEmpty && entry != nil }
}

/// All coordinator state and the handlers of its events. Used by one task only (`CoordinatorService.run`).
final class CoordinatorCore {
    let planner: JobPlanner
    let context: ZMQContext
    let clients: SocketPump
    let workers: SocketPump
    let options: CoordinatorService.Options
    var desk: MembershipDesk
    var scheduler: Scheduler
    var info: [WorkerID: WorkerInfo] = [:]
    var peers: [[UInt8]: WorkerID] = [:]
    var pipeline = PipelineState()
    var lmPool = HeadPool<HeadWork>()
    var diffusionPool = HeadPool<HeadWork>()
    var jobs: [UInt64: JobRecord] = [:]
    let journal: JobJournal?
    /// Jobs ready to start, waiting for a pipeline, in arrival order.
    var waiting: [UInt64] = []
    var nextJob: UInt64 = 1
    /// VQ requests share the head request id space with the scheduler's, from 2^62 up (above this start's base too).
    var nextConversion: UInt64
    var completed = 0
    var failed = 0
    /// Since when the pipeline has been broken by a lost stage, and why (its jobs wait for a replacement).
    var broken: (since: ContinuousClock.Instant, reason: String)?
    var rejectedClient = 0
    var rejectedWorker = 0
    /// Messages this process could not frame or queue (each is logged).
    var unsent = 0

    init(
        planner: JobPlanner,
        context: ZMQContext,
        clients: SocketPump,
        workers: SocketPump,
        options: CoordinatorService.Options
    ) throws {
        self.planner = planner
        self.context = context
        self.clients = clients
        self.workers = workers
        self.options = options
        journal = try options.journal.map(JobJournal.init)
        desk = MembershipDesk(
            machine: MembershipMachine(suspectAfter: options.suspectAfter, downAfter: options.downAfter)
        )
        // Ids above any earlier coordinator's (milliseconds since 1970, times 2^20): a restart on the same stages never
        // mistakes the old coordinator's sequences, micro-batches or head answers for its own.
        let firstID = UInt64(Date().timeIntervalSince1970 * 1000) << 20
        nextConversion = (1 << 62) + firstID
        scheduler = Scheduler(
            configuration: Scheduler.Configuration(
                pipelineDepth: 1,
                maxRows: options.maxRows,
                prefillChunk: options.prefillChunk,
                contextLength: planner.contextLength
            ),
            firstID: firstID
        )
    }

    func stop() { pipeline.entry?.stop() }

    // MARK: - Worker messages

    func worker(_ frames: [ZMQMessage]) {
        let message: WireMessage
        do {
            message = try WireMessage.parse(frames, routingFrames: 1)
        } catch {
            rejectedWorker += 1
            if frames.count > 1 {
                send(
                    WireMessage(routing: [frames[0]], envelope: .failure(about: nil, error: error)),
                    on: workers,
                    "a refusal"
                )
            }
            return
        }
        let kind = message.envelope.kind
        if (MessageKind.register.rawValue...MessageKind.refused.rawValue).contains(kind) {
            let outcome = desk.handle(message, at: .now)
            if let reply = outcome.reply { send(reply, on: workers, "a membership reply") }
            if let joined = outcome.joined {
                info[joined.id] = WorkerInfo(registration: joined.registration)
                note("\(describe(joined.id)) joined from \(joined.registration.host)")
            }
            apply(outcome.directives)
            return
        }
        let routing = message.routing.first?.bytes ?? []
        if kind == MessageKind.hello.rawValue {
            hello(from: routing, message: message)
            return
        }
        guard let sender = peers[routing] else {
            refuseWorker(message, WorkerMessageError.unknownPeer)
            return
        }
        do {
            try handleData(message, from: sender)
        } catch {
            refuseWorker(message, error)
        }
    }

    private func refuseWorker(_ message: WireMessage, _ error: any Error) {
        rejectedWorker += 1
        // Failure reports are never answered with failure reports.
        guard message.envelope.kind != Envelope.failureKind else { return }
        send(
            WireMessage(routing: message.routing, envelope: .failure(about: message.envelope, error: error)),
            on: workers,
            "a refusal"
        )
    }

    private func hello(from routing: [UInt8], message: WireMessage) {
        let id = WorkerID(message.envelope.workerID)
        guard let member = desk.members[id], member.status != .down, info[id] != nil,
            routing == WorkerLink.dataRoutingID(key: member.key, incarnation: member.incarnation)
        else {
            refuseWorker(message, MembershipMachine.Refusal.unknownWorker(id))
            return
        }
        if let old = info[id]?.peer { peers[old] = nil }
        peers[routing] = id
        info[id]?.peer = routing
        membershipChanged()
    }

    private func handleData(_ message: WireMessage, from sender: WorkerID) throws {
        let e = message.envelope
        switch e.kind {
        case MessageKind.output.rawValue:
            let batch = try StageBatch.parse(message)
            guard case .hidden(let rows) = batch.input else { throw WorkerMessageError.unexpected(e.kind) }
            apply(try scheduler.stageOutput(microBatch: batch.microBatch, lastRows: rows))
        case MessageKind.routed.rawValue:
            pipeline.awaitingRoute.remove(sender)
            openPipelineIfRouted()
        case MessageKind.sampledTokens.rawValue:
            guard case .tokens(let request) = lmPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try TokenReply.parse(
                message,
                rows: request.rows.count,
                vocabularySize: planner.configuration.vocabSize
            )
            _ = lmPool.complete(e.requestID)
            apply(try scheduler.sampled(requestID: reply.requestID, tokens: reply.tokens))
            dispatch()
        case MessageKind.sampledPatches.rawValue:
            guard case .patches(_, let owners, let places, let asked) = diffusionPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try PatchReply.parse(message, patches: owners.count, latentDim: planner.latentDim)
            _ = diffusionPool.complete(e.requestID)
            var latents = [[Float]](repeating: [], count: asked)
            for (latent, place) in zip(reply.latents, places) { latents[place] = latent }
            apply(try scheduler.patchesSampled(requestID: reply.requestID, latents: latents))
            dispatch()
        case MessageKind.decodedImage.rawValue:
            guard case .decode(let job, let image, let latents) = diffusionPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try DecodedImage.parse(message)
            _ = diffusionPool.complete(e.requestID)
            decoded(job: job, image: image, latents: latents, png: reply.png)
            dispatch()
        case MessageKind.encodedImage.rawValue:
            guard case .encode(let job, _) = diffusionPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try EncodedImage.parse(message, patches: planner.patches, latentDim: planner.latentDim)
            _ = diffusionPool.complete(e.requestID)
            encoded(job: job, latents: reply.latents)
            dispatch()
        case Envelope.failureKind:
            workerFailure(e, from: sender)
        default:
            throw WorkerMessageError.unexpected(e.kind)
        }
    }

    /// A worker could not serve a request: the jobs that depended on it fail with the worker's reason.
    private func workerFailure(_ e: Envelope, from sender: WorkerID) {
        rejectedWorker += 1
        let role = desk.members[sender]?.role
        let reason = "\(describe(sender)) failed: \(e.error)"
        var affected: [UInt64] = []
        switch role {
        case .stage:
            let (jobs, directives) = scheduler.abandon(microBatch: e.microBatch)
            affected = jobs
            apply(directives)
        case .lmHead: affected = lmPool.complete(e.requestID).map { jobs(of: $0) } ?? []
        case .diffusionHead: affected = diffusionPool.complete(e.requestID).map { jobs(of: $0) } ?? []
        case nil: break
        }
        // Failing a job cancels it in the scheduler too, which schedules what its freed places let run.
        for job in affected { fail(job, reason) }
    }

    // MARK: - Membership

    func tick() {
        apply(desk.tick(at: .now))
        // Jobs wait for a replacement stage only so long.
        if let broken, ContinuousClock.now - broken.since > options.replayTimeout {
            let running = jobs.values.filter { $0.phase == .running }.map(\.id).sorted()
            if !running.isEmpty {
                note("no replacement stage within \(options.replayTimeout); failing \(running.count) job(s)")
            }
            for job in running {
                fail(job, "\(broken.reason), and no replacement joined within \(options.replayTimeout)")
            }
            self.broken = (.now, broken.reason)
        }
    }

    func apply(_ directives: [MembershipMachine.Directive]) {
        for directive in directives {
            guard case .announce(let id, let status) = directive else { continue }
            switch status {
            case .alive, .suspect: break
            case .draining:
                // Sent on the data socket, after any request already sent to it: once the worker reads this, it has
                // everything it will get.
                // A stage leaves at once instead (its caches cannot be handed over).
                if desk.members[id]?.role == .lmHead || desk.members[id]?.role == .diffusionHead {
                    sendToWorker(id, Envelope(kind: MessageKind.drainAccepted.rawValue, workerID: id.value))
                }
            case .down:
                lost(id)
            }
        }
        membershipChanged()
    }

    /// A worker is gone: its head requests are re-sent elsewhere; a stage in the pipeline takes the pipeline down
    /// until a replacement joins, and then every sequence is replayed onto the new pipeline.
    private func lost(_ id: WorkerID) {
        note("\(describe(id)) is down")
        lmPool.reclaim(from: id)
        diffusionPool.reclaim(from: id)
        if pipeline.chain.contains(id) { breakPipeline("\(describe(id)) left the pipeline") }
        if let peer = info[id]?.peer { peers[peer] = nil }
        info[id] = nil
    }

    private func breakPipeline(_ reason: String) {
        scheduler.suspend()
        pipeline.entry?.stop()
        pipeline = PipelineState()
        broken = (.now, reason)
        note("\(reason); \(jobs.count) job(s) wait for a replacement to replay onto")
    }

    /// Forms a pipeline when none is in use, and hands queued head work to the pools.
    func membershipChanged() {
        if pipeline.chain.isEmpty {
            let stages = desk.machine.members.values.compactMap { member -> (id: WorkerID, layers: Range<Int>)? in
                guard case .stage(let layers) = member.role, member.status == .alive, info[member.id]?.peer != nil
                else { return nil }
                return (member.id, layers)
            }
            if let chain = PipelineChain.find(stages, layerCount: planner.layerCount) {
                pipeline.chain = chain
                pipeline.awaitingRoute = Set(chain)
                for (index, id) in chain.enumerated() {
                    let next = index + 1 < chain.count ? info[chain[index + 1]]!.registration.dataEndpoint : ""
                    sendToWorker(id, Envelope(kind: MessageKind.route.rawValue, endpoint: next))
                }
            }
        }
        dispatch()
    }

    private func openPipelineIfRouted() {
        guard !pipeline.chain.isEmpty, pipeline.awaitingRoute.isEmpty, pipeline.entry == nil,
            let first = info[pipeline.chain[0]]
        else { return }
        do {
            pipeline.entry = try SocketPump(
                context: context,
                name: "pipeline-entry",
                kind: .push,
                options: options.entrySocket,
                connect: first.registration.dataEndpoint
            )
        } catch {
            breakPipeline("cannot connect to the first stage at \(first.registration.dataEndpoint): \(error)")
            return
        }
        note("pipeline ready: " + pipeline.chain.map(describe).joined(separator: " -> "))
        if scheduler.paused {
            note("replaying \(scheduler.activeJobs) job(s) onto the new pipeline")
            apply(scheduler.replay())
        }
        broken = nil
        apply(scheduler.setPipelineDepth(depth))
        startWaitingJobs()
    }

    /// A line for the operator's log (stderr).
    func note(_ text: String) {
        FileHandle.standardError.write(Data("coordinator: \(text)\n".utf8))
    }

    var depth: Int {
        max(options.pipelineDepth, pipeline.chain.count, 1)
    }

    /// Sends queued head work to the workers that may take it.
    func dispatch() {
        for (pool, role) in [(\CoordinatorCore.lmPool, WorkerRole.lmHead), (\.diffusionPool, .diffusionHead)] {
            let eligible = desk.machine.available(role).map(\.id).filter { info[$0]?.peer != nil }
            for send in self[keyPath: pool].dispatch(to: eligible) {
                do {
                    sendToWorker(send.worker, try send.payload.message(id: send.request))
                } catch {
                    // A request that cannot be framed would wait forever: its jobs fail with the reason.
                    _ = self[keyPath: pool].complete(send.request)
                    for job in jobs(of: send.payload) {
                        fail(job, "head request \(send.request) could not be sent: \(error)")
                    }
                }
            }
        }
    }

    /// The jobs a head request serves.
    func jobs(of work: HeadWork) -> [UInt64] {
        switch work {
        case .tokens(let request): Set(request.rows.compactMap { scheduler.job(ofSequence: $0.sequenceID) }).sorted()
        case .patches(_, let jobs, _, _): jobs
        case .decode(let job, _, _), .encode(let job, _): [job]
        }
    }

    func sendToWorker(_ id: WorkerID, _ envelope: Envelope) {
        sendToWorker(id, WireMessage(envelope: envelope))
    }

    func sendToWorker(_ id: WorkerID, _ message: WireMessage) {
        guard let peer = info[id]?.peer else { return }
        do {
            var message = message
            message.routing = [try ZMQMessage(bytes: peer)]
            try workers.send(message)
        } catch {
            unsent += 1
            note("could not send a kind \(message.envelope.kind) message to \(describe(id)): \(error)")
        }
    }

    /// Queues a message that is no job's own (refusals, membership replies, cache releases); one that cannot be
    /// framed is logged and counted.
    func send(_ message: WireMessage, on pump: SocketPump, _ what: String) {
        do {
            try pump.send(message)
        } catch {
            unsent += 1
            note("could not send \(what): \(error)")
        }
    }

    func describe(_ id: WorkerID) -> String {
        guard let member = desk.members[id] else { return "worker \(id)" }
        switch member.role {
        case .stage(let layers):
            return "stage \(id) (layers \(layers.lowerBound)..<\(layers.upperBound), \(member.key))"
        case .lmHead: return "LM-head worker \(id) (\(member.key))"
        case .diffusionHead: return "diffusion worker \(id) (\(member.key))"
        }
    }
}

/// Why a worker's message was refused.
enum WorkerMessageError: Error, CustomStringConvertible {
    case unknownPeer
    case unexpected(UInt32)
    case badReply(String)

    var description: String {
        switch self {
        case .unknownPeer: "this socket has not said hello with a registered worker id"
        case .unexpected(let kind): "message kind \(kind) is not expected from a worker"
        case .badReply(let detail): "bad reply: \(detail)"
        }
    }
}
