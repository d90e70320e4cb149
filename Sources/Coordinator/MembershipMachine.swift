/// A worker process, as the coordinator knows it.
public struct WorkerID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public static func < (a: WorkerID, b: WorkerID) -> Bool { a.value < b.value }
    public var description: String { "w\(value)" }
}

/// What a worker does in the cluster.
public enum WorkerRole: Hashable, Sendable {
    case stage(layers: Range<Int>)
    case lmHead
    case diffusionHead
}

/// A member's state. Only the coordinator declares a worker down (README: "When something fails").
public enum MemberStatus: Hashable, Sendable {
    /// Heartbeating; receives work.
    case alive
    /// Missed heartbeats; receives no new work but is not given up yet.
    case suspect
    /// Asked to stop (SIGTERM): finishes what it holds, receives no new work.
    case draining
    /// Gone: silent too long, replaced by a new incarnation, or left after draining.
    case down
}

/// One registered worker.
public struct Member: Equatable, Sendable {
    public let id: WorkerID
    public let role: WorkerRole
    /// Stable across restarts of the same worker slot (its name or endpoint); incarnations tell restarts apart.
    public let key: String
    public let incarnation: UInt64
    public internal(set) var status: MemberStatus
    public internal(set) var lastHeard: ContinuousClock.Instant
    public internal(set) var load: Int
    /// The compute time the worker has spent so far, as its last heartbeat reported (stages: running micro-batches).
    public internal(set) var busy: Duration = .zero
}

/// Cluster membership as a pure state machine: inputs are registrations, heartbeats, drains and clock ticks; outputs
/// are directives for the coordinator's shell to carry out. No clocks or sockets inside, so it is tested with
/// synthetic instants.
public struct MembershipMachine: Sendable {
    public enum Directive: Equatable, Sendable {
        /// A member changed status (tell `status` clients, logs, metrics).
        case announce(WorkerID, MemberStatus)
        /// The member is gone: re-send its in-flight head requests, or replay its stage's sequences to a replacement.
        case reassignWork(of: WorkerID)
    }

    /// Why a message from a worker was refused.
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case unknownWorker(WorkerID)
        case staleIncarnation(key: String, offered: UInt64, current: UInt64)
        case alreadyDown(WorkerID)
        case tableFull(limit: Int)

        public var description: String {
            switch self {
            case .unknownWorker(let id): "unknown worker \(id)"
            case .staleIncarnation(let key, let offered, let current):
                "worker '\(key)' registered with incarnation \(offered), older than the current \(current)"
            case .alreadyDown(let id): "worker \(id) was declared down; register again with a new incarnation"
            case .tableFull(let limit): "the cluster has \(limit) members, its limit; no more can register"
            }
        }
    }

    public let suspectAfter: Duration
    public let downAfter: Duration
    /// Members down this long are forgotten.
    public let forgetAfter: Duration
    /// Members (down ones not yet forgotten included) at most: a registration beyond it is refused.
    public let maxMembers: Int
    public private(set) var members: [WorkerID: Member] = [:]
    /// The member each key registered that is not down: registering and re-registering look up here, not through
    /// every member.
    private var live: [String: WorkerID] = [:]
    /// When each down member went down, oldest first.
    private var down: [(id: WorkerID, since: ContinuousClock.Instant)] = []
    private var nextID: UInt64 = 1

    public init(
        suspectAfter: Duration = .seconds(3),
        downAfter: Duration = .seconds(10),
        forgetAfter: Duration = .seconds(60),
        maxMembers: Int = 1024
    ) {
        precondition(suspectAfter < downAfter, "a worker must be suspect before it is down")
        precondition(maxMembers > 0, "a cluster needs room for members")
        self.suspectAfter = suspectAfter
        self.downAfter = downAfter
        self.forgetAfter = forgetAfter
        self.maxMembers = maxMembers
    }

    /// Registers a worker. The same key and incarnation again is the same worker (an idempotent retry); a newer
    /// incarnation replaces the old member, which is declared down and its work reassigned.
    public mutating func register(
        role: WorkerRole,
        key: String,
        incarnation: UInt64,
        at now: ContinuousClock.Instant
    ) throws(Refusal) -> (WorkerID, [Directive]) {
        var directives: [Directive] = []
        if let currentID = live[key], let current = members[currentID] {
            if current.incarnation == incarnation, current.role == role { return (current.id, []) }
            guard incarnation > current.incarnation else {
                throw .staleIncarnation(key: key, offered: incarnation, current: current.incarnation)
            }
            directives += markDown(current.id, at: now)
        }
        // A full table makes room by forgetting the members longest down, and refuses when none are.
        while members.count >= maxMembers, !down.isEmpty { members[down.removeFirst().id] = nil }
        guard members.count < maxMembers else { throw .tableFull(limit: maxMembers) }
        let id = WorkerID(nextID)
        nextID += 1
        members[id] = Member(
            id: id,
            role: role,
            key: key,
            incarnation: incarnation,
            status: .alive,
            lastHeard: now,
            load: 0
        )
        live[key] = id
        directives.append(.announce(id, .alive))
        return (id, directives)
    }

    /// A heartbeat: the worker is heard, and a suspect worker is alive again.
    public mutating func heartbeat(
        from id: WorkerID,
        load: Int,
        busy: Duration = .zero,
        at now: ContinuousClock.Instant
    ) throws(Refusal) -> [Directive] {
        guard var member = members[id] else { throw .unknownWorker(id) }
        guard member.status != .down else { throw .alreadyDown(id) }
        member.lastHeard = now
        member.load = load
        member.busy = busy
        var directives: [Directive] = []
        if member.status == .suspect {
            member.status = .alive
            directives.append(.announce(id, .alive))
        }
        members[id] = member
        return directives
    }

    /// The worker was asked to stop: no new work, it finishes what it holds. A worker already declared down has had
    /// its work re-sent, so its drain is refused (it leaves at once) instead of left waiting for a confirmation.
    public mutating func drain(_ id: WorkerID) throws(Refusal) -> [Directive] {
        guard var member = members[id] else { throw .unknownWorker(id) }
        guard member.status != .down else { throw .alreadyDown(id) }
        guard member.status != .draining else { return [] }
        member.status = .draining
        members[id] = member
        return [.announce(id, .draining)]
    }

    /// A drained worker has handed back everything and left; nothing is reassigned.
    public mutating func left(_ id: WorkerID, at now: ContinuousClock.Instant) throws(Refusal) -> [Directive] {
        guard let member = members[id] else { throw .unknownWorker(id) }
        guard member.status != .down else { return [] }
        _ = markDown(id, at: now)
        return [.announce(id, .down)]
    }

    /// Advances time: silence beyond `suspectAfter` makes a worker suspect, beyond `downAfter` down.
    public mutating func tick(at now: ContinuousClock.Instant) -> [Directive] {
        var directives: [Directive] = []
        while let oldest = down.first, now - oldest.since > forgetAfter {
            down.removeFirst()
            members[oldest.id] = nil
        }
        for id in members.keys.sorted() {
            guard let member = members[id], member.status != .down else { continue }
            let silence = now - member.lastHeard
            if silence > downAfter {
                directives += markDown(id, at: now)
            } else if silence > suspectAfter, member.status == .alive {
                members[id]?.status = .suspect
                directives.append(.announce(id, .suspect))
            }
        }
        return directives
    }

    /// The member registered under `key` that is not down.
    public func member(key: String) -> Member? { live[key].flatMap { members[$0] } }

    /// Members that may receive new work in `role`, least loaded first.
    public func available(_ role: WorkerRole) -> [Member] {
        members.values.filter { $0.role == role && $0.status == .alive }.sorted { ($0.load, $0.id) < ($1.load, $1.id) }
    }

    private mutating func markDown(_ id: WorkerID, at now: ContinuousClock.Instant) -> [Directive] {
        guard let member = members[id] else { return [] }
        members[id]?.status = .down
        if live[member.key] == id { live[member.key] = nil }
        down.append((id, now))
        return [.announce(id, .down), .reassignWork(of: id)]
    }
}
