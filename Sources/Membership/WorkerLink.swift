import ClusterProtocol
import Foundation
import Runtime
import Synchronization
import Transport
import Wire

/// Why a worker could not join.
public enum LinkError: Error, Equatable, CustomStringConvertible {
    case refused(String)
    case timedOut(endpoint: String)

    public var description: String {
        switch self {
        case .refused(let reason): "the coordinator refused this worker: \(reason)"
        case .timedOut(let endpoint): "no answer from the coordinator at \(endpoint)"
        }
    }
}

/// A worker's membership link to the coordinator: register, heartbeat with its load, drain, leave.
///
/// It uses its own DEALER socket (routing id `<key>/control/<incarnation>`), so membership traffic never waits behind
/// work, and a restarted worker never collides with its predecessor's connection. One reader task owns the socket's
/// inbound stream: it hands the answers to a registration or a drain to `register` or `drain` and reports other
/// refusals (a heartbeat the coordinator does not know, as after a coordinator restart) on `refusals`, so the worker
/// can register again.
public final class WorkerLink: Sendable {
    public let registration: Registration
    /// Refusals that arrive while no registration or drain is waiting for an answer: the coordinator's reason, and the
    /// worker id the refused message carried (a refusal of an id this link no longer uses is stale).
    public let refusals: AsyncStream<(reason: String, workerID: UInt64)>
    private let pump: SocketPump
    private let endpoint: String
    private let assignedID = Atomic<UInt64>(0)
    /// Hands the answer to a pending question (a registration or a drain) from the reader task to `ask`, which waits
    /// on a continuation.
    private final class Mailbox: Sendable {
        private struct Box {
            /// A question was sent and its answer not yet taken.
            var expecting = false
            var answer: MembershipMessage?
            var waiter: CheckedContinuation<MembershipMessage?, Never>?
        }
        private let box = Mutex(Box())

        /// Called before a question is sent, so an answer that comes at once is kept. A question still waiting (a
        /// registration again while a drain waits) gets no answer instead of waiting forever.
        func expect() {
            let earlier = box.withLock { box -> CheckedContinuation<MembershipMessage?, Never>? in
                defer { box = Box(expecting: true) }
                return box.waiter
            }
            earlier?.resume(returning: nil)
        }

        func stopExpecting() {
            let waiter = box.withLock { box -> CheckedContinuation<MembershipMessage?, Never>? in
                defer { box = Box() }
                return box.waiter
            }
            waiter?.resume(returning: nil)
        }

        /// From the reader: whether a question was waiting for this answer.
        func deliver(_ envelope: MembershipMessage) -> Bool {
            let (taken, waiter) = box.withLock { box -> (Bool, CheckedContinuation<MembershipMessage?, Never>?) in
                guard box.expecting else { return (false, nil) }
                box.expecting = false
                guard let waiter = box.waiter else {
                    box.answer = envelope
                    return (true, nil)
                }
                box.waiter = nil
                return (true, waiter)
            }
            waiter?.resume(returning: envelope)
            return taken
        }

        /// The answer, when it comes; nil when the wait is cancelled (the timeout won).
        func answer() async -> MembershipMessage? {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready = box.withLock { box -> MembershipMessage?? in
                        if let answer = box.answer { return .some(answer) }
                        if Task.isCancelled || !box.expecting { return .some(nil) }
                        box.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                stopExpecting()
            }
        }
    }
    private let mailbox = Mailbox()

    /// `options` carries the socket settings (Curve keys, for one); the routing id is set here.
    public init(
        context: ZMQContext,
        coordinator endpoint: String,
        registration: Registration,
        options: ZMQSocket.Options = ZMQSocket.Options()
    ) throws {
        self.registration = registration
        self.endpoint = endpoint
        var options = options
        options.routingID = Self.controlRoutingID(registration)
        let pump = try SocketPump(context: context, name: "link", kind: .dealer, options: options, connect: endpoint)
        self.pump = pump
        let (refusals, refused) = AsyncStream.makeStream(
            of: (reason: String, workerID: UInt64).self,
            bufferingPolicy: .bufferingNewest(8)
        )
        self.refusals = refusals
        let mailbox = self.mailbox
        Task {
            for await frames in pump.inbound {
                // The coordinator is the only peer of this socket; anything unreadable or unexpected is not an answer.
                guard let envelope = try? WireMessage.parse(frames).envelope,
                    let answer = try? MembershipMessage(envelope)
                else { continue }
                switch answer {
                case .registered, .drainAccepted: _ = mailbox.deliver(answer)
                case .refused(let worker, let reason):
                    if !mailbox.deliver(answer) { refused.yield((reason, worker)) }
                default: continue
                }
            }
            refused.finish()
        }
    }

    /// The routing id of a worker's control link, and of its data socket: the coordinator checks that a message
    /// naming a worker id comes from that worker's own socket. The link secret makes them unguessable, so a peer
    /// cannot connect with a worker's routing id and have the worker's traffic handed over to it.
    public static func controlRoutingID(_ registration: Registration) -> [UInt8] {
        Array(
            "\(registration.key)/control/\(registration.incarnation)/\(String(registration.linkSecret, radix: 16))".utf8
        )
    }

    public static func dataRoutingID(_ registration: Registration) -> [UInt8] {
        Array("\(registration.key)/data/\(registration.incarnation)/\(String(registration.linkSecret, radix: 16))".utf8)
    }

    /// The id the coordinator gave this worker (0 before registration).
    public var workerID: UInt64 { assignedID.load(ordering: .relaxed) }

    /// Registers (or registers again) and waits for the answer.
    public func register(timeout: Duration = .seconds(10)) async throws -> UInt64 {
        switch try await ask(MembershipMessage.register(registration), timeout: timeout) {
        case .registered(let worker):
            assignedID.store(worker, ordering: .relaxed)
            return worker
        case .refused(_, let reason): throw LinkError.refused(reason)
        default: throw LinkError.timedOut(endpoint: endpoint)
        }
    }

    /// Tells the coordinator this worker is stopping (no new work) and waits for it to confirm. The confirmation on
    /// this link only says the coordinator heard; the one on the data socket, after the last request sent there, is
    /// what ends the worker's loop.
    public func drain(timeout: Duration) async throws {
        switch try await ask(MembershipMessage.drain(worker: workerID), timeout: timeout) {
        case .drainAccepted: return
        case .refused(_, let reason): throw LinkError.refused(reason)
        default: throw LinkError.timedOut(endpoint: endpoint)
        }
    }

    /// Sends `question` and waits for the coordinator's answer on this link, or `timeout` (then nil). One question at
    /// a time: an answer goes to whichever is waiting.
    private func ask(_ question: MembershipMessage, timeout: Duration) async throws -> MembershipMessage? {
        mailbox.expect()
        defer { mailbox.stopExpecting() }
        try pump.send(question.message)
        let mailbox = self.mailbox
        // The answer or the timeout, whichever comes first; the loser is cancelled.
        return try await withThrowingTaskGroup(of: MembershipMessage?.self) { group in
            group.addTask { await mailbox.answer() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// Sends a heartbeat every `interval` until cancelled, with the worker's `load` at that moment. Ends by
    /// cancellation; a beat that cannot be framed ends it with the error.
    public func heartbeat(every interval: Duration, load: @escaping @Sendable () -> WorkerLoad) async throws {
        while !Task.isCancelled {
            let beat = MembershipMessage.heartbeat(worker: workerID, load: load())
            try pump.send(try beat.framed())
            do {
                try await Task.sleep(for: interval)
            } catch {
                return  // cancelled: the worker is stopping
            }
        }
    }

    /// Tells the coordinator this worker has finished its work and is gone.
    public func leave() throws { try pump.send(MembershipMessage.left(worker: workerID).message) }

    /// Closes the socket.
    public func stop() { pump.stop() }
}
