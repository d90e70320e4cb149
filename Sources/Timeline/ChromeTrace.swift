import ClusterProtocol
import Foundation

/// A timeline as Chrome trace-event JSON (the format Perfetto and chrome://tracing open): one thread per lane, each
/// span a complete event ("X") named by what it ran, flow arrows joining one micro-batch's forwards from stage to
/// stage, and the coordinator's round trips as async events on its own thread. Times are microseconds from the
/// timeline's start; `otherData` holds the start and, per lane, its span time and the busy time the worker reported.
extension Timeline {
    struct Event: Encodable {
        var name: String
        var ph: String
        var pid = 1
        var tid: Int
        var ts: UInt64?
        var dur: UInt64?
        var cat: String?
        var id: UInt64?
        var bp: String?
        var args: [String: Value]?
    }

    enum Value: Encodable {
        case text(String)
        case number(UInt64)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .number(let number): try container.encode(number)
            }
        }
    }

    struct Document: Encodable {
        struct LaneTotals: Encodable {
            var spans: Int
            var spanMicroseconds: UInt64
            var reportedBusyMicroseconds: UInt64
        }
        struct Other: Encodable {
            var startUnixMicroseconds: UInt64
            var complete: Bool
            var lanes: [String: LaneTotals]
        }
        var traceEvents: [Event]
        var displayTimeUnit = "ms"
        var otherData: Other
    }

    static func name(_ span: WorkSpan) -> String {
        switch span.kind {
        case .forward: "micro-batch \(span.id)"
        case .tokens: "tokens \(span.id)"
        case .patchStep: "DDIM step"
        case .decode: "VQ decode"
        case .encode: "VQ encode"
        }
    }

    /// The trace-event document.
    public func chromeTrace() throws -> Data {
        var events: [Event] = [
            Event(name: "process_name", ph: "M", tid: 0, args: ["name": .text("orthus cluster")]),
            Event(name: "thread_name", ph: "M", tid: 0, args: ["name": .text("coordinator")]),
        ]
        for (index, lane) in lanes.enumerated() {
            events.append(Event(name: "thread_name", ph: "M", tid: index + 1, args: ["name": .text(lane.name)]))
            events.append(
                Event(name: "thread_sort_index", ph: "M", tid: index + 1, args: ["sort_index": .number(UInt64(index))])
            )
            for span in lane.spans {
                events.append(
                    Event(
                        name: Self.name(span),
                        ph: "X",
                        tid: index + 1,
                        ts: span.start - start,
                        dur: span.duration,
                        cat: "\(span.kind)",
                        args: ["rows": .number(span.rows), "id": .number(span.id)]
                    )
                )
            }
        }
        events += flows()
        for trip in trips {
            let args: [String: Value] = ["rows": .number(trip.rows)]
            events.append(
                Event(
                    name: "micro-batch \(trip.microBatch)",
                    ph: "b",
                    tid: 0,
                    ts: trip.sent - start,
                    cat: "round trip",
                    id: trip.microBatch,
                    args: args
                )
            )
            events.append(
                Event(
                    name: "micro-batch \(trip.microBatch)",
                    ph: "e",
                    tid: 0,
                    ts: trip.returned - start,
                    cat: "round trip",
                    id: trip.microBatch
                )
            )
        }
        let totals = Dictionary(
            lanes.map {
                (
                    $0.name,
                    Document.LaneTotals(
                        spans: $0.spans.count,
                        spanMicroseconds: $0.spanTime,
                        reportedBusyMicroseconds: $0.reportedBusy
                    )
                )
            },
            uniquingKeysWith: { a, _ in a }
        )
        let document = Document(
            traceEvents: events,
            otherData: .init(startUnixMicroseconds: start, complete: complete, lanes: totals)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return try encoder.encode(document)
    }

    /// Arrows from each stage's forward of a micro-batch to the next stage's.
    func flows() -> [Event] {
        var hops: [UInt64: [(tid: Int, span: WorkSpan)]] = [:]
        for (index, lane) in lanes.enumerated() where lane.role == "stage" {
            for span in lane.spans where span.kind == .forward { hops[span.id, default: []].append((index + 1, span)) }
        }
        var events: [Event] = []
        for (microBatch, chain) in hops where chain.count > 1 {
            let ordered = chain.sorted { $0.tid < $1.tid }
            for (step, hop) in ordered.enumerated() {
                let phase = step == 0 ? "s" : step == ordered.count - 1 ? "f" : "t"
                events.append(
                    Event(
                        name: "micro-batch",
                        ph: phase,
                        tid: hop.tid,
                        ts: hop.span.start - start,
                        cat: "pipeline",
                        id: microBatch,
                        bp: phase == "s" ? nil : "e"
                    )
                )
            }
        }
        return events
    }
}
