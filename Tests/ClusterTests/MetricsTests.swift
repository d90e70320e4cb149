import ClusterClient
import ClusterProtocol
import Foundation
import TestSupport
import Testing
import Wire

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `--metrics-listen` on every role of a cluster of real processes: after a text and an image job, each role's
/// `/metrics` (scraped over HTTP, in Prometheus' text format) counts the work it did, and `/health` and `/ready` answer.
@Suite(.serialized) struct MetricsTests {
    @Test func everyRoleCountsItsWorkAtMetrics() async throws {
        let listen = ["--metrics-listen", "127.0.0.1:0"]
        let cluster = try LocalCluster(coordinatorArguments: listen, workerArguments: listen)
        defer { cluster.stop() }
        _ = try await cluster.startWorkers(stages: [0..<2, 2..<4])
        let client = try ClusterClient(endpoint: cluster.clients)
        _ = try await client.submit(
            JobSpec(mode: .text, prompt: "Hello there", maxTokens: 8),
            acceptTimeout: .seconds(10)
        ).collect()
        _ = try await client.submit(
            JobSpec(mode: .textToImage, prompt: "A red cube", maxTokens: 0, steps: 5),
            acceptTimeout: .seconds(10)
        ).collect()

        var values: [String: [String: Double]] = [:]
        for role in ["coordinator", "stage-0", "stage-1", "lm", "diffusion"] {
            let base = try await Self.address(in: cluster.logPath(role))
            for probe in ["/health", "/ready"] {
                #expect(try await Self.get(base + probe).status == 200, "\(role) \(probe)")
            }
            // The workers sample their counters every second: wait for the sample after the jobs.
            try await Task.sleep(for: .milliseconds(1100))
            values[role] = Self.parse(try await Self.get(base + "/metrics").body)
        }
        let coordinator = values["coordinator"] ?? [:]
        #expect(coordinator[#"orthus_jobs_total{outcome="completed"}"#] == 2, "\(coordinator)")
        #expect((coordinator["orthus_generated_tokens_total"] ?? 0) >= 1)
        #expect((coordinator["orthus_generated_patches_total"] ?? 0) >= 1)
        #expect(coordinator["orthus_time_to_first_output_seconds_count"] == 2)
        #expect((coordinator[#"orthus_stage_kv_budget_positions{stage="0"}"#] ?? 0) > 0)
        #expect(coordinator[#"orthus_head_pool_workers{pool="diffusion"}"#] == 1)
        #expect(coordinator.keys.contains(#"orthus_stage_busy_fraction{stage="1"}"#))
        for stage in ["stage-0", "stage-1"] {
            let own = values[stage] ?? [:]
            #expect((own.first { $0.key.hasPrefix("orthus_stage_micro_batches_total") }?.value ?? 0) > 0, "\(own)")
            #expect((own.first { $0.key.hasPrefix("orthus_stage_busy_seconds_total") }?.value ?? 0) > 0)
        }
        #expect((values["diffusion"]?["orthus_diffusion_head_calls_total"] ?? 0) > 0)
        #expect(values["lm"]?["orthus_head_requests_in_progress"] == 0)
    }

    /// The metrics of one text exposition: "name{labels}" to value (comments skipped).
    static func parse(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            values[String(line[..<space])] = value
        }
        return values
    }

    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// A role's metrics address, from its log line "metrics on http://HOST:PORT".
    static func address(in log: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""  // not written yet: wait
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("metrics on ") }) {
                return String(line.dropFirst("metrics on ".count))
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterError("no metrics address in \(log)")
    }
}
