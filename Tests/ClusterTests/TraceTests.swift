import ClusterClient
import ClusterProtocol
import Foundation
import TestSupport
import Testing
import Wire

/// `orthus trace` on a cluster of real processes, two stages, while text and image jobs run together: the file is
/// trace-event JSON with a lane per stage and per head worker, no two spans of one lane overlap (each worker does one
/// thing at a time), each stage's spans add up to the busy time its heartbeats reported within 5%, and every stage
/// ran micro-batches the coordinator saw come back.
@Suite(.serialized) struct TraceTests {
    @Test func aTraceHasALanePerStageWithSpansThatAddUpToItsBusyTime() async throws {
        let scratch = try ScratchFolder("trace")
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        _ = try await cluster.startWorkers(stages: [0..<2, 2..<4])
        let client = try ClusterClient(endpoint: cluster.clients)
        // One job through first: on a loaded machine the workers may still be warming up when the window opens.
        _ = try await client.submit(
            JobSpec(mode: .text, prompt: "Warm up", maxTokens: 4, seed: 0),
            acceptTimeout: .seconds(30)
        )
        .collect()

        // Jobs of both kinds keep the pipeline busy until the trace is written.
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<4 {
                    group.addTask {
                        var round: UInt64 = 0
                        while !Task.isCancelled {
                            let spec =
                                lane % 2 == 0
                                ? JobSpec(mode: .text, prompt: "Hello there", maxTokens: 24, seed: round)
                                : JobSpec(
                                    mode: .textToImage,
                                    prompt: "A red cube",
                                    maxTokens: 0,
                                    seed: round,
                                    steps: 10
                                )
                            _ = try await client.submit(spec, acceptTimeout: .seconds(10)).collect()
                            round += 1
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Four seconds: on a loaded machine a micro-batch's round trip can take most of two.
        let (json, svg) = (scratch.file("trace.json"), scratch.file("trace.svg"))
        let traced = try await OrthusProcess.output([
            "trace", "--coordinator", cluster.clients, "--seconds", "4", "--out", json, "--svg", svg,
        ])
        load.cancel()
        #expect(traced.status == 0, "trace failed: \(traced.stderr)")

        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        )
        let events = try #require(document["traceEvents"] as? [[String: Any]])
        // Every event has the fields of its phase.
        for event in events {
            let phase = event["ph"] as? String ?? ""
            #expect(["M", "X", "b", "e", "s", "t", "f"].contains(phase), "\(event)")
            #expect(event["name"] is String && event["pid"] is Int && event["tid"] is Int, "\(event)")
            if phase != "M" { #expect(event["ts"] is Int, "\(event)") }
            if phase == "X" { #expect(event["dur"] is Int, "\(event)") }
        }
        var lanes: [Int: String] = [:]
        for event in events where event["name"] as? String == "thread_name" {
            lanes[event["tid"] as! Int] = (event["args"] as? [String: Any])?["name"] as? String
        }
        let stageLanes = lanes.filter { $0.value.hasPrefix("stage ") }
        #expect(Set(stageLanes.values.map { $0.split(separator: " ")[1] }) == ["0..<2", "2..<4"], "\(lanes)")
        #expect(
            lanes.values.contains { $0.hasPrefix("lm-head") } && lanes.values.contains { $0.hasPrefix("diffusion") }
        )

        let totals = (document["otherData"] as? [String: Any])?["lanes"] as? [String: [String: Int]] ?? [:]
        for (tid, name) in lanes where tid != 0 {
            let spans = events.filter { $0["ph"] as? String == "X" && $0["tid"] as? Int == tid }
                .map { (start: $0["ts"] as! Int, duration: $0["dur"] as! Int) }
                .sorted { $0.start < $1.start }
            for (earlier, later) in zip(spans, spans.dropFirst()) {
                #expect(earlier.start + earlier.duration <= later.start, "\(name): \(earlier) overlaps \(later)")
            }
            guard stageLanes[tid] != nil else { continue }
            let sum = spans.reduce(0) { $0 + $1.duration }
            let busy = totals[name]?["reportedBusyMicroseconds"] ?? 0
            #expect(sum > 0 && busy > 0, "\(name) did no work in the trace")
            #expect(abs(Double(sum - busy)) <= 0.05 * Double(busy), "\(name): spans \(sum) µs, busy \(busy) µs")
        }
        #expect(events.contains { $0["ph"] as? String == "b" }, "no micro-batch round trips")
        #expect(events.contains { $0["ph"] as? String == "s" }, "no flow from stage to stage")
        let picture = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(picture.hasPrefix("<svg") && picture.contains("stage 0..&lt;2") && picture.contains("stage 2..&lt;4"))
        #expect(traced.stdout.contains("stage 0..<2") && traced.stdout.contains("busy"))
        _ = await load.result  // cancelled: its jobs end with the cluster
    }
}
