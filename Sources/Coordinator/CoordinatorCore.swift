import ClusterProtocol
import Foundation
import Generation
import Membership
import Tensor
import Transport
import Wire

/// A registered worker as the coordinator addresses it.
struct WorkerInfo {
    var registration: Registration
    /// The routing id of its data socket, once it said hello.
    var peer: [UInt8]?
    /// What its last heartbeat reported (stages: refused inputs, KV positions held and budget).
    var load = WorkerLoad()
    /// When that heartbeat arrived.
    var loadAt: ContinuousClock.Instant?
}

/// The pipeline being formed or in use.
struct PipelineState {
    var chain: [WorkerID] = []
    /// Stages that have not yet confirmed their route.
    var awaitingRoute: Set<WorkerID> = []
    /// The shell's PUSH socket to the first stage is being opened, or is open.
    var opening = false
    var entryOpen = false
    /// The token the first stage admits: stamped on every micro-batch and release sent into the pipeline.
    var entryToken: UInt64 = 0

    var isReady: Bool { !chain.isEmpty && awaitingRoute.isEmpty && entryOpen }
}

/// What the coordinator's shell carries out for the core: frames to send (routing frame first where a ROUTER sends
/// them), and the socket to the first stage to open or close. Every message is framed (and so validated) by the core.
enum CoordinatorAction: Sendable {
    case toClient([ZMQMessage])
    case toWorkers([ZMQMessage])
    case toPipeline([ZMQMessage])
    /// Connect the PUSH socket to the first stage; the shell answers with `pipelineOpened` or `pipelineUnreachable`.
    case openPipeline(endpoint: String)
    case closePipeline
}

/// All coordinator state and the handlers of its events, with no sockets and no clock: each event (a client message,
/// a worker message, a tick, the pipeline socket opened) comes with the time and returns the actions for the shell
/// (`CoordinatorService`). The job journal is the one thing it reads and writes itself, because a job must be written
/// down before it is acknowledged. Used by one thread only.
final class CoordinatorCore {
    let planner: JobPlanner
    let options: CoordinatorService.Options
    var desk: MembershipDesk
    var scheduler: Scheduler
    var info: [WorkerID: WorkerInfo] = [:]
    var peers: [[UInt8]: WorkerID] = [:]
    var pipeline = PipelineState()
    var lmPool = HeadPool<HeadWork>()
    /// A diffusion worker batches every patch it holds into each DDIM step and decodes images between steps, so one
    /// request's time per step varies with the others': its deadline is looser than the LM pool's.
    var diffusionPool = HeadPool<HeadWork>(deadlineFactor: 3, deadlineFloor: .seconds(1))
    /// When each micro-batch in the pipeline was sent, and how long the pipeline takes.
    var batchClock = MicroBatchClock()
    /// Recent heartbeats' work spans and micro-batch round trips, for `orthus trace`.
    var trace = TraceLog()
    /// The wall clock trace records are timed by (microseconds since 1970), replaceable in tests.
    var wallNow: @Sendable () -> UInt64 = { WorkSpan.now }
    /// Stages that let a micro-batch pass its deadline: a chain is formed without them when one can be.
    var slowStages: Set<WorkerID> = []
    /// Workers draining (a stop, not a crash): when they go, the log says they left.
    var leaving: Set<WorkerID> = []
    var jobs: [UInt64: JobRecord] = [:]
    var metrics = CoordinatorMetrics()
    /// The job each recent client submission became (a submit sent again is not a second job).
    var submissions = Submissions()
    let journal: JobJournal?
    /// Jobs ready to start, waiting for a pipeline or for KV room, in arrival order.
    var waiting: [UInt64] = []
    /// The KV positions each running job reserved on every stage, and their sum.
    var reservedKV: [UInt64: Int] = [:]
    var kvReserved = 0
    var nextJob: UInt64 = 1
    /// VQ requests share the head request id space with the scheduler's, from 2^62 up (above this start's base too).
    var nextConversion: UInt64
    var completed = 0
    var failed = 0
    var cancelled = 0
    /// Since when the pipeline has been broken by a lost stage, and why (its jobs wait for a replacement).
    var broken: (since: ContinuousClock.Instant, reason: String)?
    var rejectedClient = 0
    var rejectedWorker = 0
    /// Messages this process could not frame (each is logged).
    var unsent = 0
    /// This run's first id, unique across restarts: status reports it, so clients can tell a restart.
    let instance: UInt64
    /// What the shell's inbox dropped unread (queues full, clients over their rate), for status.
    var inboxCounts: @Sendable () -> InboxCounts = { InboxCounts() }
    /// The time of the event being handled.
    var now: ContinuousClock.Instant
    /// What the current event asks of the shell.
    private var outbox: [CoordinatorAction] = []
    private let log: @Sendable (String) -> Void

    /// `firstID` starts the sequence, micro-batch and request numbering (the shell passes one above any earlier
    /// coordinator's); `log` receives the operator's log lines.
    init(
        planner: JobPlanner,
        options: CoordinatorService.Options,
        journal: JobJournal?,
        firstID: UInt64,
        now: ContinuousClock.Instant,
        log: @escaping @Sendable (String) -> Void
    ) {
        self.planner = planner
        self.options = options
        self.journal = journal
        self.now = now
        instance = firstID
        self.log = log
        desk = MembershipDesk(
            machine: MembershipMachine(suspectAfter: options.suspectAfter, downAfter: options.downAfter)
        )
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

    // MARK: - Events

    /// A message on the client socket, from the key `peer` (anonymous without Curve).
    func client(
        _ frames: [ZMQMessage],
        from peer: PeerIdentity = .anonymous,
        at now: ContinuousClock.Instant
    ) -> [CoordinatorAction] {
        handling(at: now) { handleClient(frames, from: peer) }
    }

    /// A message on the worker socket, from the key `peer` (anonymous without Curve).
    func worker(
        _ frames: [ZMQMessage],
        from peer: PeerIdentity = .anonymous,
        at now: ContinuousClock.Instant
    ) -> [CoordinatorAction] {
        handling(at: now) { handleWorker(frames, from: peer) }
    }

    /// The clock: heartbeats missed, replay timeouts.
    func tick(at now: ContinuousClock.Instant) -> [CoordinatorAction] { handling(at: now) { handleTick() } }

    /// The journal's unfinished jobs run again.
    func restore(at now: ContinuousClock.Instant) -> [CoordinatorAction] { handling(at: now) { restoreJournal() } }

    /// The shell connected the socket to the first stage.
    func pipelineOpened(at now: ContinuousClock.Instant) -> [CoordinatorAction] {
        handling(at: now) { startPipeline() }
    }

    /// The shell could not connect to the first stage.
    func pipelineUnreachable(_ error: any Error, at now: ContinuousClock.Instant) -> [CoordinatorAction] {
        handling(at: now) {
            let endpoint = pipeline.chain.first.flatMap { info[$0]?.registration.dataEndpoint } ?? "?"
            breakPipeline("cannot connect to the first stage at \(endpoint): \(error)")
        }
    }

    private func handling(at now: ContinuousClock.Instant, _ body: () -> Void) -> [CoordinatorAction] {
        self.now = now
        body()
        defer { outbox = [] }
        return outbox
    }

    /// Queues frames for the shell; a message that cannot be framed is a bug here, logged and counted.
    func emit(_ message: WireMessage, _ action: ([ZMQMessage]) -> CoordinatorAction, _ what: String) {
        do {
            outbox.append(action(try message.frames()))
        } catch {
            unsent += 1
            note("could not send \(what): \(error)")
        }
    }

    /// Queues frames that must go out or fail their job: framing errors are thrown to the caller.
    func emitOrThrow(_ message: WireMessage, _ action: ([ZMQMessage]) -> CoordinatorAction) throws {
        outbox.append(action(try message.frames()))
    }

    func emit(_ action: CoordinatorAction) { outbox.append(action) }

    /// A line for the operator's log.
    func note(_ text: String) { log(text) }

    var depth: Int {
        max(options.pipelineDepth, pipeline.chain.count, 1)
    }

    /// Sends queued head work to the workers that may take it.
    func dispatch() {
        for (pool, role) in [(\CoordinatorCore.lmPool, WorkerRole.lmHead), (\.diffusionPool, .diffusionHead)] {
            let eligible = desk.machine.available(role).map(\.id).filter { info[$0]?.peer != nil }
            for send in self[keyPath: pool].dispatch(to: eligible, at: now) {
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
            outbox.append(.toWorkers(try message.frames()))
        } catch {
            unsent += 1
            note("could not send a kind \(message.envelope.kind) message to \(describe(id)): \(error)")
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
    case notFromAClient(UInt32)
    case badReply(String)

    var description: String {
        switch self {
        case .unknownPeer: "this socket has not said hello with a registered worker id"
        case .unexpected(let kind): "message kind \(kind) is not expected from a worker"
        case .notFromAClient(let kind): "message kind \(kind) is not expected from a client"
        case .badReply(let detail): "bad reply: \(detail)"
        }
    }
}
