import Membership

/// One head pool as the coordinator dispatches to it: which worker holds which request, and the requests waiting for
/// a worker. A request goes to the eligible worker holding the fewest, ties to the one that least recently got work
/// (so a lone job's sequential requests still spread over the pool); when a worker is lost its requests go back to the
/// front of the queue and are re-sent elsewhere (heads are stateless and seeded, so the answer is the same).
///
/// Deadlines: the pool learns its service time per unit of each kind of work (a moving average from send to answer,
/// divided by the request's units: 1 for a token request, its DDIM steps for a patch request); a request unanswered
/// for `deadlineFactor` times its units' expected time (at least `deadlineFloor`) is overdue, and `resend` gives it to
/// another worker while its holder, marked slow, gets no new work until it answers something. The first answer
/// completes a request; a later one finds it gone and is dropped, so the output is the same.
struct HeadPool<Payload>: Sendable where Payload: Sendable {
    private(set) var holder: [UInt64: WorkerID] = [:]
    private(set) var payloads: [UInt64: Payload] = [:]
    /// Requests waiting for a worker, oldest first.
    private(set) var backlog: [UInt64] = []
    /// When each worker last got a request (a dispatch counter).
    private var lastAssigned: [WorkerID: UInt64] = [:]
    private var assignments: UInt64 = 0
    /// When each held request was sent to its holder.
    private var sentAt: [UInt64: ContinuousClock.Instant] = [:]
    /// What each request costs.
    private var costs: [UInt64: WorkCost] = [:]
    /// The moving average of the time from send to answer per unit, by kind of work; absent before the first answer.
    private(set) var serviceTimes: [Int: Duration] = [:]
    /// Workers that let a request pass its deadline.
    private(set) var slow: Set<WorkerID> = []
    let deadlineFactor: Double
    let deadlineFloor: Duration
    /// Before any answer of its kind a request's deadline is this.
    let firstDeadline: Duration

    init(
        deadlineFactor: Double = 2,
        deadlineFloor: Duration = .milliseconds(250),
        firstDeadline: Duration = .seconds(5)
    ) {
        self.deadlineFactor = deadlineFactor
        self.deadlineFloor = deadlineFloor
        self.firstDeadline = firstDeadline
    }

    /// The service time per unit of the kind of work most requests are (kind 0).
    var serviceTime: Duration? { serviceTimes[0] }

    /// How long a request of `cost` may go unanswered.
    func deadline(for cost: WorkCost = WorkCost()) -> Duration {
        guard let perUnit = serviceTimes[cost.kind] else { return firstDeadline }
        return max(deadlineFloor, perUnit * (deadlineFactor * Double(cost.units)))
    }

    /// How long request `id` may go unanswered.
    func deadline(of id: UInt64) -> Duration { deadline(for: costs[id] ?? WorkCost()) }

    /// Queues a request; `dispatch` sends it.
    mutating func add(_ id: UInt64, _ payload: Payload, cost: WorkCost = WorkCost()) {
        payloads[id] = payload
        costs[id] = cost
        backlog.append(id)
    }

    /// Requests a worker holds now.
    func load(of worker: WorkerID) -> Int { holder.values.filter { $0 == worker }.count }

    /// Assigns queued requests to `workers` (those that may take new work): least loaded first, then least recently
    /// assigned, then lower id; returns what to send where.
    mutating func dispatch(
        to candidates: [WorkerID],
        at now: ContinuousClock.Instant
    ) -> [(request: UInt64, worker: WorkerID, payload: Payload)] {
        let workers = candidates.filter { !slow.contains($0) }
        guard !workers.isEmpty else { return [] }
        var loads = Dictionary(uniqueKeysWithValues: workers.map { ($0, load(of: $0)) })
        var sends: [(UInt64, WorkerID, Payload)] = []
        for id in backlog {
            guard let payload = payloads[id] else { continue }
            let worker = loads.min {
                ($0.value, lastAssigned[$0.key] ?? 0, $0.key) < ($1.value, lastAssigned[$1.key] ?? 0, $1.key)
            }!.key
            loads[worker]! += 1
            assignments += 1
            lastAssigned[worker] = assignments
            holder[id] = worker
            sentAt[id] = now
            sends.append((id, worker, payload))
        }
        backlog = []
        return sends
    }

    /// A request was answered by `worker` (any, when a failure report ends it); returns its payload, or nil if it is
    /// unknown or already answered. An answer from the request's holder times the pool's service; any answer shows
    /// the worker is not stuck.
    mutating func complete(_ id: UInt64, by worker: WorkerID? = nil, at now: ContinuousClock.Instant? = nil) -> Payload?
    {
        if let worker {
            slow.remove(worker)
            if holder[id] == worker, let now, let sent = sentAt[id], let cost = costs[id] {
                let took = (now - sent) / max(1, cost.units)
                serviceTimes[cost.kind] = serviceTimes[cost.kind].map { $0 * 0.8 + took * 0.2 } ?? took
            }
        }
        holder[id] = nil
        sentAt[id] = nil
        costs[id] = nil
        backlog.removeAll { $0 == id }
        return payloads.removeValue(forKey: id)
    }

    /// A worker was lost: its requests go back to the front of the queue, in request order; returns how many.
    @discardableResult
    mutating func reclaim(from worker: WorkerID) -> Int {
        let lost = holder.filter { $0.value == worker }.map(\.key).sorted()
        for id in lost {
            holder[id] = nil
            sentAt[id] = nil
        }
        slow.remove(worker)
        backlog = lost + backlog
        return lost.count
    }

    /// Requests past their deadline, oldest first, with their holders.
    func overdue(at now: ContinuousClock.Instant) -> [(request: UInt64, worker: WorkerID)] {
        sentAt.filter { now - $0.value > deadline(of: $0.key) }.keys.sorted().compactMap { id in
            holder[id].map { (id, $0) }
        }
    }

    /// Takes an overdue request from its holder, which is marked slow, to the front of the queue for another worker.
    mutating func resend(_ id: UInt64) {
        guard let worker = holder.removeValue(forKey: id) else { return }
        sentAt[id] = nil
        slow.insert(worker)
        backlog.insert(id, at: 0)
    }

    /// Requests not yet answered.
    var pending: Int { payloads.count }
}

/// What a head request costs, for its deadline: requests of one kind take about `units` times one unit's time.
struct WorkCost: Hashable, Sendable {
    var kind = 0
    var units = 1
}

/// The stage chain: alive stages whose layer ranges cover 0..<layerCount end to end.
enum PipelineChain {
    /// The first chain found (stages tried in id order), or nil when the ranges leave a gap.
    static func find(_ stages: [(id: WorkerID, layers: Range<Int>)], layerCount: Int) -> [WorkerID]? {
        let ordered = stages.sorted { $0.id < $1.id }
        func extend(from position: Int, _ chain: [WorkerID]) -> [WorkerID]? {
            if position == layerCount { return chain }
            for stage in ordered where stage.layers.lowerBound == position && stage.layers.upperBound > position {
                if let done = extend(from: stage.layers.upperBound, chain + [stage.id]) { return done }
            }
            return nil
        }
        return layerCount > 0 ? extend(from: 0, []) : nil
    }
}
