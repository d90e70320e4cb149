import ClusterProtocol
import Foundation
import Testing

@testable import Timeline

/// A trace report as lanes, Chrome trace-event JSON and SVG.
@Suite struct TimelineTests {
    static func forward(_ id: UInt64, at start: UInt64, for duration: UInt64) -> WorkSpan {
        WorkSpan(kind: .forward, id: id, rows: 2, start: start, duration: duration)
    }

    static let report = TraceReport(
        cursor: 9,
        complete: true,
        workers: [
            .init(id: 5, role: "stage", layers: "2..<4", host: "b"),
            .init(id: 3, role: "diffusion-head", layers: nil, host: "c"),
            .init(id: 4, role: "stage", layers: "0..<2", host: "a"),
        ],
        beats: [
            // Each worker's first beat is its baseline: its spans may predate the trace.
            .init(seq: 1, worker: 4, busy: 1_000, spans: [forward(1, at: 0, for: 900)]),
            .init(seq: 2, worker: 5, busy: 2_000, spans: []),
            .init(
                seq: 3,
                worker: 4,
                busy: 1_300,
                spans: [forward(2, at: 10_000, for: 100), forward(3, at: 10_300, for: 200)]
            ),
            .init(
                seq: 4,
                worker: 5,
                busy: 2_250,
                spans: [forward(2, at: 10_150, for: 120), forward(3, at: 10_520, for: 130)]
            ),
        ],
        trips: [.init(seq: 5, microBatch: 2, rows: 2, sent: 9_990, returned: 10_300)]
    )

    @Test func lanesAreStagesInLayerOrderThenHeadsWithSpansAfterTheBaseline() {
        let timeline = Timeline(Self.report)
        #expect(timeline.lanes.map(\.name) == ["stage 0..<2 (w4)", "stage 2..<4 (w5)", "diffusion-head (w3)"])
        #expect(timeline.lanes[0].spans.map(\.id) == [2, 3] && timeline.lanes[0].spanTime == 300)
        #expect(timeline.lanes[0].reportedBusy == 300 && timeline.lanes[1].reportedBusy == 250)
        #expect(timeline.lanes[2].spans.isEmpty)
        #expect(timeline.start == 9_990 && timeline.end == 10_650)
    }

    @Test func aBaselineFromBeforeTheTraceCountsEveryHeartbeatsSpans() {
        let timeline = Timeline(Self.report, baselines: [4: 100, 5: 2_000])
        let stage = timeline.lanes[0]
        #expect(stage.spans.map(\.id) == [1, 2, 3] && stage.spanTime == 1_200 && stage.reportedBusy == 1_200)
        #expect(timeline.lanes[1].reportedBusy == 250)
    }

    @Test func theChromeTraceHasALanePerWorkerSpansFlowsAndRoundTrips() throws {
        let data = try Timeline(Self.report).chromeTrace()
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let events = try #require(document["traceEvents"] as? [[String: Any]])
        let names = events.filter { $0["name"] as? String == "thread_name" }.compactMap {
            ($0["args"] as? [String: Any])?["name"] as? String
        }
        #expect(names == ["coordinator", "stage 0..<2 (w4)", "stage 2..<4 (w5)", "diffusion-head (w3)"])
        let spans = events.filter { $0["ph"] as? String == "X" }
        #expect(spans.count == 4)
        let first = try #require(spans.first { $0["tid"] as? Int == 1 })
        #expect(first["ts"] as? Int == 10 && first["dur"] as? Int == 100 && first["name"] as? String == "micro-batch 2")
        // Micro-batches 2 and 3 each flow from stage 0..<2 to stage 2..<4.
        let flows = events.filter { ["s", "f"].contains($0["ph"] as? String) }
        #expect(flows.count == 4 && flows.filter { $0["ph"] as? String == "f" }.allSatisfy { $0["tid"] as? Int == 2 })
        #expect(events.filter { ["b", "e"].contains($0["ph"] as? String) }.count == 2)
        let lanes = (document["otherData"] as? [String: Any])?["lanes"] as? [String: [String: Int]]
        #expect(lanes?["stage 2..<4 (w5)"]?["spanMicroseconds"] == 250)
    }

    @Test func aWindowEndsAtACursorWithEachWorkersNextHeartbeat() {
        let window = Self.report.window(through: 3)
        // Worker 4's beats 1 and 3, worker 5's beat 2 and its next one (4), no trip after the cursor.
        #expect(window.beats.map(\.seq) == [1, 2, 3, 4] && window.trips.isEmpty)
        #expect(Self.report.window(through: 2).beats.map(\.seq) == [1, 2, 3, 4])
        #expect(Self.report.window(through: 1).beats.map(\.seq) == [1, 2, 3])
    }

    @Test func theSVGDrawsEveryLaneAndSpan() {
        let svg = Timeline(Self.report).svg(width: 800)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("stage 0..&lt;2 (w4) · busy 45%"))
        #expect(svg.components(separatedBy: "fill=\"#4878a8\"").count - 1 == 4 + 1)  // 4 spans and the legend
        // Spans closer than half a pixel are drawn as one bar.
        var touching = Self.report
        touching.beats[2].spans = [Self.forward(2, at: 10_000, for: 100), Self.forward(3, at: 10_100, for: 100)]
        #expect(Timeline(touching).svg(width: 800).components(separatedBy: "fill=\"#4878a8\"").count - 1 == 3 + 1)
        #expect(Timeline.roundStep(0.13) == 0.2 && Timeline.roundStep(7) == 10 && Timeline.roundStep(40) == 50)
    }
}
