import ClusterProtocol
import Synchronization
import Transport

/// The coordinator's events waiting for its thread, in the order that keeps the cluster alive under a flood:
///
/// * worker control messages first (registrations, heartbeats, drains on the workers' control links), so no amount
///   of client or data traffic delays a heartbeat until its worker is declared down; each control link within a
///   rate (a worker beats once a second and registers now and then): what a link sends beyond it is dropped and
///   counted, so a worker that floods its control link cannot hold back everything else;
/// * then worker data and client messages in turns;
/// * clients each in their own queue, served round-robin, so one client's flood delays another's status by one
///   message per turn at most; each client's queue has a bound and a rate (a token bucket), and what it sends beyond
///   them is dropped and counted against it.
///
/// Every queue is bounded, so nothing a peer sends grows this process's memory beyond the bounds.
final class FairInbox: Sendable {
    enum Event: Sendable {
        case client([ZMQMessage], PeerIdentity)
        case worker([ZMQMessage], PeerIdentity)
        case tick
    }

    /// A FIFO that pops in O(1).
    struct Queue<Element> {
        private var items: [Element] = []
        private var head = 0
        var count: Int { items.count - head }
        var isEmpty: Bool { head == items.count }

        mutating func push(_ item: Element) { items.append(item) }

        mutating func pop() -> Element? {
            guard head < items.count else { return nil }
            defer {
                head += 1
                if head == items.count {
                    items.removeAll(keepingCapacity: items.count <= 1024)
                    head = 0
                } else if head > 1024, head * 2 > items.count {
                    items.removeFirst(head)
                    head = 0
                }
            }
            return items[head]
        }
    }

    /// One client's queue and budget.
    struct ClientState {
        var queue = Queue<([ZMQMessage], PeerIdentity)>()
        var budget: TokenBucket
        var dropped = 0
        /// In the round-robin ring.
        var scheduled = false
    }

    private struct State {
        var control = Queue<([ZMQMessage], PeerIdentity)>()
        var data = Queue<([ZMQMessage], PeerIdentity)>()
        var clients: [[UInt8]: ClientState] = [:]
        /// Each control link's budget for going first, by its routing id.
        var controlBudgets: [[UInt8]: TokenBucket] = [:]
        /// Clients with messages waiting, in turn order.
        var ring = Queue<[UInt8]>()
        var tick = false
        var clientTurn = true
        var droppedClient = 0
        var droppedWorker = 0
        /// Drops of clients no longer tracked, and of clients beyond `clientPeers`.
        var droppedOther = 0
    }

    let limits: InboxLimits
    private let state = Mutex(State())
    let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// The shared queue of clients beyond `clientPeers`.
    private static let overflowPeer: [UInt8] = []

    init(limits: InboxLimits = InboxLimits()) {
        self.limits = limits
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether a worker message came on a control link (`<key>/control/<incarnation>`): read from the routing frame
    /// alone, without parsing, so it can jump the queue. Only worker keys reach the worker socket under Curve.
    static func isControl(_ frames: [ZMQMessage]) -> Bool {
        guard let routing = frames.first, routing.count < 512 else { return false }
        return routing.withBytes { String(decoding: $0, as: UTF8.self) }.contains("/control/")
    }

    /// Whether a control link's message is within the link's rate (links are tracked up to `controlPeers`; beyond,
    /// while no tracked link's budget is whole again, a new link's messages are dropped).
    private static func withinRate(
        _ state: inout State,
        _ frames: [ZMQMessage],
        _ limits: InboxLimits,
        _ now: ContinuousClock.Instant
    ) -> Bool {
        let link = frames.first?.bytes ?? []
        if state.controlBudgets[link] == nil {
            if state.controlBudgets.count >= limits.controlPeers {
                state.controlBudgets = state.controlBudgets.filter { !$0.value.isFull(at: now) }
            }
            guard state.controlBudgets.count < limits.controlPeers else { return false }
            state.controlBudgets[link] = TokenBucket(rate: limits.controlRate, burst: limits.controlBurst, at: now)
        }
        return state.controlBudgets[link]!.take(at: now)
    }

    /// A client's queue key: its Curve key when it has one, else the connection's routing id.
    private static func clientKey(_ frames: [ZMQMessage], _ peer: PeerIdentity) -> [UInt8] {
        peer.role != nil ? Array(peer.publicKey.utf8) : (frames.first?.bytes ?? [])
    }

    func push(_ event: Event, at now: ContinuousClock.Instant = .now) {
        let queued = state.withLock { state -> Bool in
            switch event {
            case .client(let frames, let peer): return pushClient(&state, frames, peer, now)
            case .worker(let frames, let peer):
                let control = Self.isControl(frames)
                guard (control ? state.control.count : state.data.count) < limits.workerQueue,
                    !control || Self.withinRate(&state, frames, limits, now)
                else {
                    state.droppedWorker += 1
                    return false
                }
                if control { state.control.push((frames, peer)) } else { state.data.push((frames, peer)) }
                return true
            case .tick:
                state.tick = true
                return true
            }
        }
        // A dropped message wakes nobody: under a flood, waking the consumer for each cost a context switch apiece.
        if queued { wake.yield() }
    }

    /// Queues a client's message unless it is over its bound or rate; returns whether it was queued.
    private func pushClient(
        _ state: inout State,
        _ frames: [ZMQMessage],
        _ peer: PeerIdentity,
        _ now: ContinuousClock.Instant
    ) -> Bool {
        var key = Self.clientKey(frames, peer)
        if state.clients[key] == nil, state.clients.count >= limits.clientPeers {
            // Forget idle clients whose budget is whole again; they lose nothing by it.
            let idle = state.clients.filter { $0.value.queue.isEmpty && $0.value.budget.isFull(at: now) }
            for (idleKey, client) in idle {
                state.droppedOther += client.dropped
                state.clients[idleKey] = nil
            }
            if state.clients.count >= limits.clientPeers { key = Self.overflowPeer }
        }
        if state.clients[key] == nil {
            state.clients[key] = ClientState(
                budget: TokenBucket(rate: limits.clientRate, burst: limits.clientBurst, at: now)
            )
        }
        // Changed in place (a copy of the state would copy its queue on every push).
        if state.clients[key]!.queue.count < limits.clientQueue, state.clients[key]!.budget.take(at: now) {
            state.clients[key]!.queue.push((frames, peer))
            if !state.clients[key]!.scheduled {
                state.clients[key]!.scheduled = true
                state.ring.push(key)
            }
            return true
        }
        state.clients[key]!.dropped += 1
        state.droppedClient += 1
        return false
    }

    /// No more events will come.
    func close() { wake.finish() }

    /// Up to `limit` events: a pending tick, then worker control messages, then worker data and clients in turns
    /// (clients round-robin).
    func take(_ limit: Int) -> [Event] {
        state.withLock { state in
            var events: [Event] = []
            if state.tick {
                state.tick = false
                events.append(.tick)
            }
            while events.count < limit, let (frames, peer) = state.control.pop() {
                events.append(.worker(frames, peer))
            }
            while events.count < limit {
                state.clientTurn.toggle()
                if state.clientTurn, let event = popClient(&state) {
                    events.append(event)
                } else if let (frames, peer) = state.data.pop() {
                    events.append(.worker(frames, peer))
                } else if let event = popClient(&state) {
                    events.append(event)
                } else {
                    break
                }
            }
            return events
        }
    }

    private func popClient(_ state: inout State) -> Event? {
        while let key = state.ring.pop() {
            guard state.clients[key] != nil, let (frames, peer) = state.clients[key]!.queue.pop() else { continue }
            if state.clients[key]!.queue.isEmpty { state.clients[key]!.scheduled = false } else { state.ring.push(key) }
            return .client(frames, peer)
        }
        return nil
    }

    /// What was dropped, with the `top` clients that had the most dropped (a key's first characters, or a
    /// connection), most first.
    func counts(top: Int) -> InboxCounts {
        state.withLock { state in
            var rows = state.clients.filter { $0.value.dropped > 0 }.map { entry in
                (peer: Self.describe(entry.key), dropped: entry.value.dropped)
            }
            if state.droppedOther > 0 { rows.append((peer: "other clients", dropped: state.droppedOther)) }
            let topClients = Array(rows.sorted { $0.dropped > $1.dropped }.prefix(top))
            return InboxCounts(client: state.droppedClient, worker: state.droppedWorker, topClients: topClients)
        }
    }

    private static func describe(_ key: [UInt8]) -> String {
        if key.isEmpty { return "clients beyond the tracked limit" }
        return key.count == 40
            ? "client key " + String(decoding: key.prefix(8), as: UTF8.self) + "…"
            : "connection " + key.map { String($0, radix: 16) }.joined()
    }
}

/// What the inbox dropped: from clients and from workers, and the clients that had the most dropped.
struct InboxCounts: Sendable {
    var client = 0
    var worker = 0
    var topClients: [(peer: String, dropped: Int)] = []
}

/// The bounds of the coordinator's inbox (`FairInbox`).
public struct InboxLimits: Sendable {
    /// Messages from the workers' control links, and from their data sockets, waiting at most.
    public var workerQueue = 10_000
    /// Messages one client may have waiting.
    public var clientQueue = 256
    /// Messages one client may send per second in the long run, and at once.
    public var clientRate = 200.0
    public var clientBurst = 400.0
    /// Clients tracked at once; beyond it new clients share one queue.
    public var clientPeers = 4096
    /// Messages one control link may send per second in the long run, and at once (a worker beats once a second and
    /// registers now and then); beyond, they are dropped. Control links tracked at once.
    public var controlRate = 20.0
    public var controlBurst = 40.0
    public var controlPeers = 4096
    public init() {}
}
