import ClusterProtocol
import Membership
import Runtime
import Transport
import Wire

/// The coordinator's side of the membership protocol: control messages in, replies and membership directives out,
/// around the pure `MembershipMachine`. No sockets or clocks inside: the coordinator's loop feeds it messages read
/// from its worker ROUTER and the current instant.
public struct MembershipDesk: Sendable {
    /// What one control message led to.
    public struct Outcome: Sendable {
        /// The answer to send back to the sender (registered or refused), if any.
        public var reply: WireMessage?
        public var directives: [MembershipMachine.Directive] = []
        /// A worker that just joined, with what it registered.
        public var joined: (id: WorkerID, registration: Registration)?
    }

    public private(set) var machine: MembershipMachine
    /// Control messages that could not be read or were refused.
    public private(set) var rejected = 0
    /// New registrations allowed: a bucket of `registrationBurst` that refills at `registrationsPerSecond`, so a
    /// flood of fake registrations is refused at the cost of a reply each and never fills the member table.
    public let registrationsPerSecond: Double
    public let registrationBurst: Double
    private var registrationTokens: Double
    private var refilled: ContinuousClock.Instant?

    public init(machine: MembershipMachine, registrationsPerSecond: Double = 20, registrationBurst: Double = 256) {
        self.machine = machine
        self.registrationsPerSecond = registrationsPerSecond
        self.registrationBurst = registrationBurst
        registrationTokens = registrationBurst
    }

    /// Takes a registration token, if the bucket has one.
    private mutating func allowRegistration(at now: ContinuousClock.Instant) -> Bool {
        if let refilled {
            registrationTokens = min(
                registrationBurst,
                registrationTokens + (now - refilled).seconds * registrationsPerSecond
            )
        }
        refilled = now
        guard registrationTokens >= 1 else { return false }
        registrationTokens -= 1
        return true
    }

    /// The current members, by id.
    public var members: [WorkerID: Member] { machine.members }

    /// Handles one control message (kinds 40-45) read from the worker ROUTER.
    public mutating func handle(_ message: WireMessage, at now: ContinuousClock.Instant) -> Outcome {
        var outcome = Outcome()
        let e = message.envelope
        do {
            switch try MembershipMessage(e) {
            case .register(let registration):
                let role: WorkerRole =
                    switch registration.role {
                    case .stage: .stage(layers: registration.layers)
                    case .lmHead: .lmHead
                    case .diffusionHead: .diffusionHead
                    }
                if case .stage(let layers) = role, layers.isEmpty || registration.dataEndpoint.isEmpty {
                    throw MembershipError.stageWithoutLayersOrEndpoint
                }
                // A worker already registered with this key and incarnation only gets its id again.
                let known = machine.member(key: registration.key)?.incarnation == registration.incarnation
                guard known || allowRegistration(at: now) else { throw MembershipError.tooManyRegistrations }
                let (id, directives) = try machine.register(
                    role: role,
                    key: registration.key,
                    incarnation: registration.incarnation,
                    at: now
                )
                outcome.reply = reply(MembershipMessage.registered(worker: id.value), to: message)
                outcome.directives = directives
                if directives.contains(.announce(id, .alive)) { outcome.joined = (id, registration) }
            case .heartbeat(let worker, let outstanding, let busy):
                try checkSender(message)
                outcome.directives = try machine.heartbeat(
                    from: WorkerID(worker),
                    load: outstanding,
                    busy: busy,
                    at: now
                )
            case .drain(let worker):
                try checkSender(message)
                outcome.directives = try machine.drain(WorkerID(worker))
            case .left(let worker):
                try checkSender(message)
                outcome.directives = try machine.left(WorkerID(worker), at: now)
            default:
                throw MembershipError.notAControlMessage(e.kind)
            }
        } catch {
            rejected += 1
            outcome.reply = reply(.refused(worker: e.workerID, reason: "\(error)"), to: message)
        }
        return outcome
    }

    /// An answer on the control link the message came from.
    private func reply(_ answer: MembershipMessage, to message: WireMessage) -> WireMessage {
        var reply = answer.message
        reply.routing = message.routing
        return reply
    }

    /// A worker id names a member only on that member's own control link: ids are not unique across coordinator
    /// restarts, so a worker still using an id from the last coordinator is refused (and registers again) instead of
    /// being taken for whoever holds that id now.
    private func checkSender(_ message: WireMessage) throws(MembershipMachine.Refusal) {
        let id = WorkerID(message.envelope.workerID)
        guard let member = machine.members[id],
            message.routing.first?.bytes
                == WorkerLink.controlRoutingID(key: member.key, incarnation: member.incarnation)
        else { throw .unknownWorker(id) }
    }

    /// Counts a control message that could not even be parsed.
    public mutating func countMalformed() { rejected += 1 }

    /// Advances the membership clock.
    public mutating func tick(at now: ContinuousClock.Instant) -> [MembershipMachine.Directive] {
        machine.tick(at: now)
    }
}

/// Why a control message was refused (beyond the machine's own refusals).
public enum MembershipError: Error, Equatable, CustomStringConvertible {
    case stageWithoutLayersOrEndpoint
    case tooManyRegistrations
    case notAControlMessage(UInt32)

    public var description: String {
        switch self {
        case .stageWithoutLayersOrEndpoint: "a stage must register a non-empty layer range and its data endpoint"
        case .tooManyRegistrations: "too many registrations at once; try again in a second"
        case .notAControlMessage(let kind): "message kind \(kind) is not a membership message a worker sends"
        }
    }
}
