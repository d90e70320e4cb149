import ClusterProtocol

/// The coordinator's recent trace records, for `orthus trace`: every heartbeat's spans with its busy time, and every
/// micro-batch's round trip. Bounded by spans held (the oldest records go first), so it costs a few MB at most and
/// nothing has to switch it on. Pure: the caller gives the times.
struct TraceLog {
    /// Records in arrival order; `first` is the oldest still held (older ones are dropped in place and compacted).
    private enum Record {
        case beat(TraceReport.Beat)
        case trip(TraceReport.RoundTrip)

        var seq: UInt64 {
            switch self {
            case .beat(let beat): beat.seq
            case .trip(let trip): trip.seq
            }
        }
        /// What it counts against the capacity: its spans (at least one).
        var weight: Int {
            switch self {
            case .beat(let beat): max(1, beat.spans.count)
            case .trip: 1
            }
        }
    }

    /// Spans and round trips held at most.
    let capacity: Int
    private var records: [Record] = []
    private var first = 0
    private var held = 0
    private var nextSeq: UInt64 = 1
    /// The newest record dropped to stay within the capacity (0: none).
    private(set) var droppedThrough: UInt64 = 0
    /// Each worker's busy time at its newest heartbeat (workers that left are forgotten with `forget`).
    private var lastBusy: [UInt64: UInt64] = [:]
    /// Micro-batches sent and not yet back: rows and send time.
    private var inFlight: [UInt64: (rows: UInt64, sent: UInt64)] = [:]

    init(capacity: Int = 200_000) { self.capacity = capacity }

    mutating func beat(worker: UInt64, busy: UInt64, spans: [WorkSpan]) {
        lastBusy[worker] = busy
        append(.beat(.init(seq: nextSeq, worker: worker, busy: busy, spans: spans)))
    }

    /// Drops a worker that left from the baselines.
    mutating func forget(worker: UInt64) { lastBusy[worker] = nil }

    mutating func sent(microBatch: UInt64, rows: Int, at now: UInt64) {
        inFlight[microBatch] = (UInt64(max(0, rows)), now)
        // A micro-batch that never comes back (its stage died and the pipeline was re-formed) is not kept forever.
        if inFlight.count > 4096, let oldest = inFlight.min(by: { $0.value.sent < $1.value.sent }) {
            inFlight[oldest.key] = nil
        }
    }

    mutating func returned(microBatch: UInt64, at now: UInt64) {
        guard let trip = inFlight.removeValue(forKey: microBatch) else { return }
        append(.trip(.init(seq: nextSeq, microBatch: microBatch, rows: trip.rows, sent: trip.sent, returned: now)))
    }

    /// The records after `since` (`UInt64.max`: none), at most `pageSpans` spans' worth of them, with the cursor to
    /// ask from next: a page costs the coordinator a bounded time however often a client asks.
    func report(since: UInt64, workers: [TraceReport.Worker], pageSpans: Int = 20_000) -> TraceReport {
        var beats: [TraceReport.Beat] = []
        var trips: [TraceReport.RoundTrip] = []
        var cursor = nextSeq - 1
        var taken = 0
        var more = false
        // Records are in seq order: find the first after `since` by bisection.
        var (low, high) = (first, records.count)
        while low < high {
            let middle = (low + high) / 2
            if records[middle].seq > since { high = middle } else { low = middle + 1 }
        }
        for record in records[low...] {
            if taken + record.weight > pageSpans, taken > 0 {
                more = true
                break
            }
            taken += record.weight
            cursor = record.seq
            switch record {
            case .beat(let beat): beats.append(beat)
            case .trip(let trip): trips.append(trip)
            }
        }
        var report = TraceReport(
            cursor: cursor,
            complete: since == .max || since >= droppedThrough,
            workers: workers,
            beats: beats,
            trips: trips
        )
        report.more = more
        report.baselines = lastBusy
        return report
    }

    private mutating func append(_ record: Record) {
        nextSeq += 1
        records.append(record)
        held += record.weight
        while held > capacity, first < records.count - 1 {
            held -= records[first].weight
            droppedThrough = records[first].seq
            first += 1
        }
        // Compact once the dropped part is half the array: each record is moved O(1) times on average.
        if first > 1024, first * 2 > records.count {
            records.removeFirst(first)
            first = 0
        }
    }
}
