import ClusterProtocol
import Foundation
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
        /// The answer to send back to the sender (registered, drain accepted or refused), if any.
        public var reply: WireMessage?
        public var directives: [MembershipMachine.Directive] = []
        /// A worker that just joined, with what it registered.
        public var joined: (id: WorkerID, registration: Registration)?
        /// What a heartbeat reported.
        public var load: (id: WorkerID, load: WorkerLoad)?
    }

    public private(set) var machine: MembershipMachine
    /// Control messages that could not be read or were refused.
    public private(set) var rejected = 0
    /// New registrations allowed per key: a bucket of `registrationBurst` that refills at `registrationsPerSecond`,
    /// so a flood of fake registrations is refused at the cost of a reply each, never fills the member table, and
    /// (under Curve) never holds back another key's workers. Without Curve every peer shares the anonymous bucket.
    public let registrationsPerSecond: Double
    public let registrationBurst: Double
    private var registrationBuckets: [String: TokenBucket] = [:]
    /// The key that registered each member: every later message about that member must come from the same key.
    public private(set) var identities: [WorkerID: PeerIdentity] = [:]
    /// The routing id of each member's control link (unguessable: it holds the worker's link secret).
    private var controlLinks: [WorkerID: [UInt8]] = [:]
    /// Incarnations are microseconds since 1970 when a worker starts; one further ahead of this coordinator's clock
    /// than `incarnationSlack` is refused, so no worker can claim an incarnation no restart could ever replace.
    public let incarnationSlack: UInt64 = 3_600_000_000
    private let wallClock: @Sendable () -> UInt64

    public init(
        machine: MembershipMachine,
        registrationsPerSecond: Double = 20,
        registrationBurst: Double = 256,
        wallClock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1_000_000) }
    ) {
        self.machine = machine
        self.registrationsPerSecond = registrationsPerSecond
        self.registrationBurst = registrationBurst
        self.wallClock = wallClock
    }

    /// Takes a registration token from `peer`'s bucket, if it has one.
    private mutating func allowRegistration(from peer: PeerIdentity, at now: ContinuousClock.Instant) -> Bool {
        if registrationBuckets.count > 1024 {
            registrationBuckets = registrationBuckets.filter { !$0.value.isFull(at: now) }  // idle keys lose nothing
        }
        var bucket =
            registrationBuckets[peer.publicKey]
            ?? TokenBucket(rate: registrationsPerSecond, burst: registrationBurst, at: now)
        defer { registrationBuckets[peer.publicKey] = bucket }
        return bucket.take(at: now)
    }

    /// The current members, by id.
    public var members: [WorkerID: Member] { machine.members }

    /// Handles one control message (kinds 40-45) read from the worker ROUTER, sent by `peer`.
    public mutating func handle(
        _ message: WireMessage,
        from peer: PeerIdentity,
        at now: ContinuousClock.Instant
    ) -> Outcome {
        var outcome = Outcome()
        let e = message.envelope
        do {
            switch try MembershipMessage(message) {
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
                guard registration.incarnation <= wallClock() &+ incarnationSlack else {
                    throw MembershipError.incarnationAhead(registration.incarnation)
                }
                let current = machine.member(key: registration.key)
                // A slot held by a live worker is that worker's key's: another key cannot replace it.
                if let current, identities[current.id] != peer { throw MembershipError.slotHeldByAnotherKey }
                // A worker already registered with this key and incarnation only gets its id again.
                let known = current?.incarnation == registration.incarnation
                guard known || allowRegistration(from: peer, at: now) else {
                    throw MembershipError.tooManyRegistrations
                }
                let (id, directives) = try machine.register(
                    role: role,
                    key: registration.key,
                    incarnation: registration.incarnation,
                    at: now
                )
                identities[id] = peer
                controlLinks[id] = WorkerLink.controlRoutingID(registration)
                outcome.reply = reply(MembershipMessage.registered(worker: id.value), to: message)
                outcome.directives = directives
                if directives.contains(.announce(id, .alive)) { outcome.joined = (id, registration) }
            case .heartbeat(let worker, let load):
                try checkSender(message, peer)
                outcome.load = (WorkerID(worker), load)
                outcome.directives = try machine.heartbeat(
                    from: WorkerID(worker),
                    load: load.outstanding,
                    busy: load.busy,
                    at: now
                )
            case .drain(let worker):
                try checkSender(message, peer)
                outcome.directives = try machine.drain(WorkerID(worker))
                // Heard: a worker that gets no such answer takes the coordinator for gone and stops waiting for it.
                outcome.reply = reply(MembershipMessage.drainAccepted(worker: worker), to: message)
            case .left(let worker):
                try checkSender(message, peer)
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
    private func checkSender(_ message: WireMessage, _ peer: PeerIdentity) throws(MembershipMachine.Refusal) {
        let id = WorkerID(message.envelope.workerID)
        guard machine.members[id] != nil, identities[id] == peer, let link = controlLinks[id],
            message.routing.first?.bytes == link
        else { throw .unknownWorker(id) }
    }

    /// Counts a control message that could not even be parsed.
    public mutating func countMalformed() { rejected += 1 }

    /// Advances the membership clock.
    public mutating func tick(at now: ContinuousClock.Instant) -> [MembershipMachine.Directive] {
        let directives = machine.tick(at: now)
        if identities.count > machine.members.count {  // forgotten members
            identities = identities.filter { machine.members[$0.key] != nil }
            controlLinks = controlLinks.filter { machine.members[$0.key] != nil }
        }
        return directives
    }
}

/// Why a control message was refused (beyond the machine's own refusals).
public enum MembershipError: Error, Equatable, CustomStringConvertible {
    case stageWithoutLayersOrEndpoint
    case tooManyRegistrations
    case notAControlMessage(UInt32)
    case slotHeldByAnotherKey
    case incarnationAhead(UInt64)

    public var description: String {
        switch self {
        case .stageWithoutLayersOrEndpoint: "a stage must register a non-empty layer range and its data endpoint"
        case .tooManyRegistrations: "too many registrations at once; try again in a second"
        case .notAControlMessage(let kind): "message kind \(kind) is not a membership message a worker sends"
        case .slotHeldByAnotherKey: "this worker key is held by a live worker registered with another Curve key"
        case .incarnationAhead(let incarnation):
            "incarnation \(incarnation) is ahead of the coordinator's clock (microseconds since 1970 at start)"
        }
    }
}
