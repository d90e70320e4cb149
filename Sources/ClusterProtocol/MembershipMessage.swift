import Runtime
import Transport
import Wire

/// The membership messages between a worker and the coordinator's worker socket, each with its named fields: on the
/// worker's control link (register, heartbeat, drain, leave, and the coordinator's answers) and on its data socket
/// (hello, and the coordinator's acceptance of a drain).
public enum MembershipMessage: Sendable, Equatable {
    case register(Registration)
    case registered(worker: UInt64)
    case refused(worker: UInt64, reason: String)
    /// Alive, with what the worker holds and has done so far.
    case heartbeat(worker: UInt64, load: WorkerLoad)
    /// Stopping: send no new work.
    case drain(worker: UInt64)
    /// Drained and gone.
    case left(worker: UInt64)
    /// On the data socket: this socket belongs to `worker` (a ROUTER can address a peer only after hearing from it).
    case hello(worker: UInt64)
    /// After a drain: on the control link, the drain was heard; on the data socket, nothing more will come, so once
    /// what arrived before is done the worker may leave.
    case drainAccepted(worker: UInt64)

    public var kind: MessageKind {
        switch self {
        case .register: .register
        case .registered: .registered
        case .refused: .refused
        case .heartbeat: .heartbeat
        case .drain: .drain
        case .left: .left
        case .hello: .hello
        case .drainAccepted: .drainAccepted
        }
    }

    public var envelope: Envelope {
        var e = Envelope(kind: kind.rawValue)
        switch self {
        case .register(let registration): e.registration = registration
        case .refused(let worker, let reason): (e.workerID, e.error) = (worker, reason)
        case .heartbeat(let worker, let load):
            e.workerID = worker
            e.outstanding = UInt32(clamping: load.outstanding)
            e.busyMicroseconds = UInt64(clamping: load.busy.microseconds)
            e.refusedInputs = load.refusedInputs
            e.kvPositions = load.kvPositions
            e.kvBudget = load.kvBudget
            e.microBatch = load.finishedMicroBatch
        case .registered(let worker), .drain(let worker), .left(let worker), .hello(let worker),
            .drainAccepted(let worker):
            e.workerID = worker
        }
        return e
    }

    /// The message of every kind but a heartbeat with spans (see `framed`).
    public var message: WireMessage { WireMessage(envelope: envelope) }

    /// The whole message: the envelope, and a heartbeat's spans as a `spans` u64 [spans, 5] frame.
    public func framed() throws -> WireMessage {
        guard case .heartbeat(_, let load) = self, !load.spans.isEmpty else { return message }
        var e = envelope
        let (descriptor, frame) = try WorkSpan.frame(load.spans)
        e.tensors = [descriptor]
        return WireMessage(envelope: e, tensors: [frame])
    }

    /// Reads a whole membership message: the envelope, and a heartbeat's spans.
    public init(_ message: WireMessage) throws(MembershipMessageError) {
        try self.init(message.envelope)
        guard !message.envelope.tensors.isEmpty else { return }
        guard case .heartbeat(let worker, var load) = self, message.envelope.tensors.count == 1 else {
            throw .badSpans("only a heartbeat carries a tensor: its 'spans'")
        }
        load.spans = try WorkSpan.read(message.envelope.tensors[0], message.tensors[0])
        self = .heartbeat(worker: worker, load: load)
    }

    /// Reads a membership envelope; another kind, or a registration missing from a register, is refused by name.
    public init(_ e: Envelope) throws(MembershipMessageError) {
        switch e.messageKind {
        case .register:
            guard let registration = e.registration else { throw .missingRegistration }
            self = .register(registration)
        case .registered: self = .registered(worker: e.workerID)
        case .refused: self = .refused(worker: e.workerID, reason: e.error)
        case .heartbeat:
            self = .heartbeat(
                worker: e.workerID,
                load: WorkerLoad(
                    outstanding: Int(e.outstanding),
                    busy: .microseconds(Int64(clamping: e.busyMicroseconds)),
                    refusedInputs: e.refusedInputs,
                    kvPositions: e.kvPositions,
                    kvBudget: e.kvBudget,
                    finishedMicroBatch: e.microBatch
                )
            )
        case .drain: self = .drain(worker: e.workerID)
        case .left: self = .left(worker: e.workerID)
        case .hello: self = .hello(worker: e.workerID)
        case .drainAccepted: self = .drainAccepted(worker: e.workerID)
        default: throw .notMembership(e.kind)
        }
    }
}

/// Why a membership message could not be read.
public enum MembershipMessageError: Error, Equatable, CustomStringConvertible {
    case notMembership(UInt32)
    case missingRegistration
    case badSpans(String)

    public var description: String {
        switch self {
        case .notMembership(let kind): "message kind \(kind) is not a membership message"
        case .missingRegistration: "a register message carries no registration"
        case .badSpans(let detail): detail
        }
    }
}

/// What a heartbeat reports about its worker.
public struct WorkerLoad: Sendable, Equatable {
    /// Requests the worker holds.
    public var outstanding: Int
    /// Compute time so far (stages: running micro-batches).
    public var busy: Duration
    /// Stage inputs refused so far (a wrong route token, over the KV budget, unreadable).
    public var refusedInputs: UInt64
    /// Stages: the KV positions held, and the budget (the most the stage holds).
    public var kvPositions: UInt64
    public var kvBudget: UInt64
    /// Stages: the newest micro-batch it has run (carried in the heartbeat's `micro_batch`). A stage runs micro-batches
    /// in the order they reach it, so every older one has passed it too: the coordinator finds the stage a late
    /// micro-batch is stuck on as the first of the chain that has not reported it.
    public var finishedMicroBatch: UInt64
    /// The work the worker finished since its previous heartbeat, timed by itself (`orthus trace` draws them).
    public var spans: [WorkSpan]

    public init(
        outstanding: Int = 0,
        busy: Duration = .zero,
        refusedInputs: UInt64 = 0,
        kvPositions: UInt64 = 0,
        kvBudget: UInt64 = 0,
        finishedMicroBatch: UInt64 = 0,
        spans: [WorkSpan] = []
    ) {
        self.outstanding = outstanding
        self.busy = busy
        self.refusedInputs = refusedInputs
        self.kvPositions = kvPositions
        self.kvBudget = kvBudget
        self.finishedMicroBatch = finishedMicroBatch
        self.spans = spans
    }
}
