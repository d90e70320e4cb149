/// What `orthus trace` receives: the records the coordinator kept after the asked cursor. Workers' spans come from
/// their heartbeats, each with the busy time the worker reported in the same heartbeat; the coordinator's own records
/// are round trips (a micro-batch from its send to the last stage's output). Times are microseconds since 1970 on the
/// clock of whoever measured them: a worker times its own spans, the coordinator its round trips.
public struct TraceReport: Codable, Sendable, Equatable {
    public struct Worker: Codable, Sendable, Equatable {
        public var id: UInt64
        /// stage, lm-head or diffusion-head.
        public var role: String
        /// Stages: "a..<b".
        public var layers: String?
        public var host: String

        public init(id: UInt64, role: String, layers: String?, host: String) {
            self.id = id
            self.role = role
            self.layers = layers
            self.host = host
        }

        /// The lane's name: "stage 0..<2 (w3)", "lm-head (w4)".
        public var lane: String { (layers.map { "\(role) \($0)" } ?? role) + " (w\(id))" }
    }

    /// One heartbeat: the spans the worker finished since its previous one, and its busy time so far.
    public struct Beat: Codable, Sendable, Equatable {
        public var seq: UInt64
        public var worker: UInt64
        public var busy: UInt64
        public var spans: [WorkSpan]

        public init(seq: UInt64, worker: UInt64, busy: UInt64, spans: [WorkSpan]) {
            self.seq = seq
            self.worker = worker
            self.busy = busy
            self.spans = spans
        }
    }

    /// A micro-batch's trip through the pipeline, on the coordinator's clock.
    public struct RoundTrip: Codable, Sendable, Equatable {
        public var seq: UInt64
        public var microBatch: UInt64
        public var rows: UInt64
        public var sent: UInt64
        public var returned: UInt64

        public init(seq: UInt64, microBatch: UInt64, rows: UInt64, sent: UInt64, returned: UInt64) {
            self.seq = seq
            self.microBatch = microBatch
            self.rows = rows
            self.sent = sent
            self.returned = returned
        }
    }

    /// Ask again with this cursor for the records after these.
    public var cursor: UInt64
    /// False when records after the asked cursor were dropped (the coordinator keeps a bounded number).
    public var complete: Bool
    /// More records follow this page (a reply holds a bounded number of spans): ask again from `cursor`.
    public var more = false
    /// Each worker's busy time at its newest heartbeat so far, by worker id: asked at the start of a trace, it is where
    /// the busy time of the trace's first heartbeats counts from.
    public var baselines: [UInt64: UInt64] = [:]
    public var workers: [Worker]
    public var beats: [Beat]
    public var trips: [RoundTrip]

    public init(cursor: UInt64, complete: Bool, workers: [Worker], beats: [Beat], trips: [RoundTrip]) {
        self.cursor = cursor
        self.complete = complete
        self.workers = workers
        self.beats = beats
        self.trips = trips
    }
}
