import ClusterClient
import ClusterLauncher
import ClusterProtocol
import Foundation
import Runtime
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
            let base = try await cluster.announced(role, prefix: "metrics on ")
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
        // Nothing runs now: no job of any mode, no micro-batch in the pipeline or on a stage.
        #expect(coordinator[#"orthus_jobs_by_mode{mode="textToImage"}"#] == 0, "\(coordinator)")
        #expect(coordinator["orthus_micro_batches_in_flight"] == 0)
        #expect(coordinator[#"orthus_stage_micro_batches_in_flight{stage="1"}"#] == 0)
        for stage in ["stage-0", "stage-1"] {
            let own = values[stage] ?? [:]
            #expect((own.first { $0.key.hasPrefix("orthus_stage_micro_batches_total") }?.value ?? 0) > 0, "\(own)")
            #expect((own.first { $0.key.hasPrefix("orthus_stage_busy_seconds_total") }?.value ?? 0) > 0)
        }
        #expect((values["diffusion"]?["orthus_diffusion_head_calls_total"] ?? 0) > 0)
        #expect(values["lm"]?["orthus_head_requests_in_progress"] == 0)
    }

    /// A real Prometheus server (Debian's `prometheus`) scrapes the coordinator, both stages, both head workers and
    /// the gateway every second while jobs run; its HTTP API then has the tokens generated and each stage's busy
    /// fraction above zero, and every target up.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "needs prometheus"))
    func aRealPrometheusScrapesEveryRoleDuringJobs() async throws {
        let listen = ["--metrics-listen", "127.0.0.1:0"]
        let cluster = try LocalCluster(coordinatorArguments: listen, workerArguments: listen)
        defer { cluster.stop() }
        _ = try await cluster.startWorkers(stages: [0..<2, 2..<4])
        try cluster.start(
            "gateway",
            ["serve", "--coordinator", cluster.clients, "--model", cluster.model, "--listen", "127.0.0.1:0"]
        )
        var targets: [String] = []
        for role in ["coordinator", "stage-0", "stage-1", "lm", "diffusion"] {
            targets.append(try await cluster.announced(role, prefix: "metrics on "))
        }
        targets.append(try await cluster.announced("gateway", prefix: "serving "))

        let port = try Self.freePort()
        let config = cluster.folder + "/prometheus.yml"
        let hosts = targets.map { "'\($0.dropFirst("http://".count))'" }.joined(separator: ", ")
        try """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: orthus
            static_configs:
              - targets: [\(hosts)]
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let prometheus = try ChildProcess.start(
            executable: "/usr/bin/prometheus",
            arguments: [
                "--config.file=\(config)", "--storage.tsdb.path=\(cluster.folder)/tsdb",
                "--web.listen-address=127.0.0.1:\(port)",
            ],
            log: cluster.folder + "/prometheus.log"
        )
        defer { prometheus.terminate() }
        let api = "http://127.0.0.1:\(port)/api/v1/query?query="
        func query(_ expression: String) async throws -> [Double] {
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let body = try await Self.get(api + encoded).body
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let results = (json?["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
            return results.compactMap { ($0["value"] as? [Any])?.last as? String }.compactMap(Double.init)
        }
        // Every target up before the jobs (a query Prometheus cannot answer yet is asked again).
        let upBy = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < upBy {
            if let up = try? await query("up"), up.count == targets.count, up.allSatisfy({ $0 == 1 }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(try await query("up") == Array(repeating: 1, count: targets.count))

        let client = try ClusterClient(endpoint: cluster.clients)
        async let text = client.submit(
            JobSpec(mode: .text, prompt: "Hello there", maxTokens: 40),
            acceptTimeout: .seconds(10)
        )
        .collect()
        async let image = client.submit(
            JobSpec(mode: .textToImage, prompt: "A red cube", maxTokens: 0, steps: 100),
            acceptTimeout: .seconds(10)
        ).collect()
        _ = try await (text, image)
        try await Task.sleep(for: .seconds(3))  // the last samples scraped

        #expect(try await query("orthus_generated_tokens_total").first ?? 0 > 0)
        #expect(try await query("orthus_generated_patches_total").first ?? 0 > 0)
        let busy = try await query("max_over_time(orthus_stage_busy_fraction[1m])")
        #expect(busy.count == 2 && busy.allSatisfy { $0 > 0 }, "stage busy fractions: \(busy)")
        let stageWork = try await query("orthus_stage_micro_batches_total")
        #expect(stageWork.count == 2 && stageWork.allSatisfy { $0 > 0 }, "\(stageWork)")
        #expect(try await query("orthus_diffusion_head_calls_total").first ?? 0 > 0)
        // The gateway's own HTTP metrics: the scrapes of its /metrics are requests too.
        #expect(try await query("sum(hb_requests)").first ?? 0 > 0)
    }

    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else { throw ClusterError("no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
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
}

/// The example spec with metrics and a gateway is one `orthus up` reads: every role has its metrics listener.
@Suite struct ObservedSpecTests {
    @Test func theHTTPExampleSpecGivesEveryRoleMetricsAndAGateway() throws {
        let spec = try ClusterSpec.load(Fixtures.repository + "/cluster/local-http.json")
        #expect(spec.gateway?.listen == "127.0.0.1:8000" && spec.coordinator.metricsListen != nil)
        let listeners =
            [spec.coordinator.metricsListen] + spec.stages.map(\.metricsListen) + spec.lmHeads.map(\.metricsListen)
            + spec.diffusionHeads.map(\.metricsListen)
        #expect(listeners.allSatisfy { $0 != nil } && Set(listeners).count == listeners.count)
    }
}
