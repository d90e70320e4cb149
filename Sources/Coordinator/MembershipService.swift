import Foundation
import Membership
import Synchronization
import Transport
import Wire

/// The coordinator's membership shell: a ROUTER for worker control links around the pure `MembershipMachine`.
///
/// Registrations are answered (`registered` with the worker id, or `refused` with the reason), heartbeats and drains
/// are recorded, and the clock ticks every `tickInterval`; every directive the machine returns (status changes,
/// work to reassign) is yielded on `directives` for the scheduler shell. Malformed messages are counted, never fatal.
public final class MembershipService: Sendable {
    public let directives: AsyncStream<MembershipMachine.Directive>
    private let continuation: AsyncStream<MembershipMachine.Directive>.Continuation
    private let machine: Mutex<MembershipMachine>
    private let pump: SocketPump
    private let rejectedCount = Atomic<Int>(0)

    /// Control messages that could not be read or were refused.
    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }

    /// The current members, by id.
    public var members: [WorkerID: Member] { machine.withLock { $0.members } }

    public init(pump: SocketPump, machine: MembershipMachine) {
        self.pump = pump
        self.machine = Mutex(machine)
        (directives, continuation) = AsyncStream.makeStream(of: MembershipMachine.Directive.self)
    }

    /// Serves control messages and ticks the clock until the socket stops.
    public func run(tickInterval: Duration = .milliseconds(200)) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frames in self.pump.inbound { self.handle(frames, at: .now) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: tickInterval)
                    self.publish(self.machine.withLock { $0.tick(at: .now) })
                }
            }
            await group.next()
            group.cancelAll()
        }
        continuation.finish()
    }

    func handle(_ frames: [ZMQMessage], at now: ContinuousClock.Instant) {
        guard let message = try? WireMessage.parse(frames, routingFrames: 1),
            let kind = MembershipKind(rawValue: message.envelope.kind)
        else {
            rejectedCount.add(1, ordering: .relaxed)
            return
        }
        let e = message.envelope
        do {
            switch kind {
            case .register:
                guard let registration = e.registration else {
                    throw MembershipMachine.Refusal.unknownWorker(WorkerID(0))
                }
                let role: WorkerRole =
                    switch registration.role {
                    case .stage: .stage(layers: registration.layers)
                    case .lmHead: .lmHead
                    case .diffusionHead: .diffusionHead
                    }
                let (id, directives) = try machine.withLock {
                    try $0.register(role: role, key: registration.key, incarnation: registration.incarnation, at: now)
                }
                reply(to: message.routing, Envelope(kind: MembershipKind.registered.rawValue, workerID: id.value))
                publish(directives)
            case .heartbeat:
                publish(
                    try machine.withLock { try $0.heartbeat(from: WorkerID(e.workerID), load: Int(e.load), at: now) }
                )
            case .drain:
                publish(try machine.withLock { try $0.drain(WorkerID(e.workerID)) })
            case .left:
                publish(try machine.withLock { try $0.left(WorkerID(e.workerID)) })
            case .registered, .refused:
                throw MembershipMachine.Refusal.unknownWorker(WorkerID(e.workerID))
            }
        } catch {
            rejectedCount.add(1, ordering: .relaxed)
            reply(
                to: message.routing,
                Envelope(kind: MembershipKind.refused.rawValue, error: "\(error)", workerID: e.workerID)
            )
        }
    }

    private func reply(to routing: [ZMQMessage], _ envelope: Envelope) {
        pump.send(WireMessage(routing: routing, envelope: envelope))
    }

    private func publish(_ directives: [MembershipMachine.Directive]) {
        for directive in directives { continuation.yield(directive) }
    }
}
