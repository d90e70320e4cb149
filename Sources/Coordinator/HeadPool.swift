import Membership

/// One head pool as the coordinator dispatches to it: which worker holds which request, and the requests waiting for
/// a worker. A request goes to the eligible worker holding the fewest, ties to the one that least recently got work
/// (so a lone job's sequential requests still spread over the pool); when a worker is lost its requests go back to the
/// front of the queue and are re-sent elsewhere (heads are stateless and seeded, so the answer is the same).
struct HeadPool<Payload>: Sendable where Payload: Sendable {
    private(set) var holder: [UInt64: WorkerID] = [:]
    private(set) var payloads: [UInt64: Payload] = [:]
    /// Requests waiting for a worker, oldest first.
    private(set) var backlog: [UInt64] = []
    /// When each worker last got a request (a dispatch counter).
    private var lastAssigned: [WorkerID: UInt64] = [:]
    private var assignments: UInt64 = 0

    /// Queues a request; `dispatch` sends it.
    mutating func add(_ id: UInt64, _ payload: Payload) {
        payloads[id] = payload
        backlog.append(id)
    }

    /// Requests a worker holds now.
    func load(of worker: WorkerID) -> Int { holder.values.filter { $0 == worker }.count }

    /// Assigns queued requests to `workers` (those that may take new work): least loaded first, then least recently
    /// assigned, then lower id; returns what to send where.
    mutating func dispatch(to workers: [WorkerID]) -> [(request: UInt64, worker: WorkerID, payload: Payload)] {
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
            sends.append((id, worker, payload))
        }
        backlog = []
        return sends
    }

    /// A request was answered (by whichever worker); returns its payload, or nil if it is unknown or already
    /// answered.
    mutating func complete(_ id: UInt64) -> Payload? {
        holder[id] = nil
        backlog.removeAll { $0 == id }
        return payloads.removeValue(forKey: id)
    }

    /// A worker was lost: its requests go back to the front of the queue, in request order.
    mutating func reclaim(from worker: WorkerID) {
        let lost = holder.filter { $0.value == worker }.map(\.key).sorted()
        for id in lost { holder[id] = nil }
        backlog = lost + backlog
    }

    /// Requests not yet answered.
    var pending: Int { payloads.count }
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
