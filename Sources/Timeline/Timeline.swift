import ClusterProtocol

/// A trace's records as lanes of spans, one lane per worker: stages in layer order, then the LM-head and diffusion
/// workers, each with the spans it reported and the busy time it reported over the same heartbeats, and the
/// coordinator's micro-batch round trips. Pure: `orthus trace` writes it as Chrome trace-event JSON and as SVG.
public struct Timeline: Sendable {
    public struct Lane: Sendable, Equatable {
        public var name: String
        public var worker: UInt64
        public var role: String
        /// The spans of the heartbeats after the lane's first one in the trace, in time order.
        public var spans: [WorkSpan]
        /// The busy time the worker reported over those same heartbeats (last minus first).
        public var reportedBusy: UInt64

        /// The spans' total length.
        public var spanTime: UInt64 { spans.reduce(0) { $0 + $1.duration } }
    }

    public var lanes: [Lane]
    public var trips: [TraceReport.RoundTrip]
    /// The first and last instant of any span or trip (microseconds since 1970).
    public var start: UInt64
    public var end: UInt64
    /// Whether every record after the asked cursor reached the client.
    public var complete: Bool

    /// Builds lanes from a report. Busy time counts from the worker's entry in `baselines` (its busy time at its last
    /// heartbeat before the trace), every span of the report counting; for a worker without one, from its first
    /// heartbeat in the report, whose spans are then left out (they may have begun long before the trace).
    public init(_ report: TraceReport, baselines: [UInt64: UInt64] = [:]) {
        let named = Dictionary(report.workers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var byWorker: [UInt64: [TraceReport.Beat]] = [:]
        for beat in report.beats { byWorker[beat.worker, default: []].append(beat) }
        var lanes: [Lane] = []
        var ids = Set(byWorker.keys)
        ids.formUnion(report.workers.map(\.id))
        for id in ids {
            let beats = (byWorker[id] ?? []).sorted { $0.seq < $1.seq }
            let worker = named[id]
            let baseline = baselines[id]
            let counted = baseline == nil ? beats.dropFirst() : beats[...]
            let from = baseline ?? beats.first?.busy ?? 0
            lanes.append(
                Lane(
                    name: worker?.lane ?? "w\(id)",
                    worker: id,
                    role: worker?.role ?? "gone",
                    spans: counted.flatMap(\.spans).sorted { $0.start < $1.start },
                    reportedBusy: (beats.last?.busy ?? from) - min(from, beats.last?.busy ?? from)
                )
            )
        }
        self.lanes = lanes.sorted { Self.order($0, named).lexicographicallyPrecedes(Self.order($1, named)) }
        trips = report.trips
        let instants =
            lanes.flatMap { $0.spans.flatMap { [$0.start, $0.start + $0.duration] } }
            + report.trips.flatMap { [$0.sent, $0.returned] }
        start = instants.min() ?? 0
        end = instants.max() ?? 0
        complete = report.complete
    }

    /// Stages by their first layer, then LM-head, then diffusion workers, then workers no longer members; by id within.
    private static func order(_ lane: Lane, _ named: [UInt64: TraceReport.Worker]) -> [UInt64] {
        let rank: UInt64 =
            switch lane.role {
            case "stage": 0
            case "lm-head": 1
            case "diffusion-head": 2
            default: 3
            }
        let firstLayer = named[lane.worker]?.layers.flatMap { UInt64($0.prefix { $0.isNumber }) } ?? 0
        return [rank, firstLayer, lane.worker]
    }

    /// The stages' lanes.
    public var stages: [Lane] { lanes.filter { $0.role == "stage" } }

    /// A lane's busy share of the whole timeline.
    public func busyShare(_ lane: Lane) -> Double {
        end > start ? Double(lane.spanTime) / Double(end - start) : 0
    }
}

extension TraceReport {
    /// The records up to cursor `through` and, for each worker, its first heartbeat after it, which carries the work
    /// it did up to then: a trace of N seconds ends within a heartbeat of N seconds.
    public func window(through: UInt64) -> TraceReport {
        var window = self
        var closed: Set<UInt64> = []
        window.beats = beats.filter { $0.seq <= through || closed.insert($0.worker).inserted }
        window.trips = trips.filter { $0.seq <= through }
        return window
    }
}
