import Checkpoint
import ClusterClient
import ClusterLauncher
import ClusterProtocol
import Engine
import Foundation
import Runtime
import Wire

/// The cluster on this machine: a coordinator, two stages (half the layers each), an LM-head and a diffusion-head
/// worker as separate processes, each with its share of the cores. It measures time to first token, time per output
/// token, time per image, each stage's busy fraction, pipeline efficiency (throughput of many text jobs against the
/// single process's on the same cores and jobs) and overlap (text time per token while images run, against alone).
public struct ClusterBench: Sendable {
    public let model: BenchModel
    /// The `orthus` executable to start the processes from.
    public let executable: String
    public let quick: Bool
    /// Micro-batches in flight (the coordinator's `--depth`; 0 is its default).
    public let depth: Int

    public init(model: BenchModel, executable: String, quick: Bool, depth: Int = 0) {
        self.model = model
        self.executable = executable
        self.quick = quick
        self.depth = depth
    }

    var tokens: Int { quick ? 16 : 32 }
    var steps: Int { quick ? 10 : 50 }

    func textJob(_ index: Int) -> JobSpec {
        JobSpec(
            mode: .text,
            prompt: "Bench prompt number \(index): tell me something.",
            maxTokens: tokens,
            seed: UInt64(index)
        )
    }

    func imageJob(_ index: Int) -> JobSpec {
        JobSpec(
            mode: .textToImage,
            prompt: "a picture, number \(index)",
            maxTokens: 0,
            seed: UInt64(index),
            guidance: 5,
            steps: steps
        )
    }

    public func run(progress: (String) -> Void) async throws -> [Figure] {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = max(1, cores / 4)
        let scratch = NSTemporaryDirectory() + "orthus-bench-cluster-" + UUID().uuidString
        let cluster = try ClusterProcesses(executable: executable, logs: scratch)
        defer {
            cluster.stop()
            try? FileManager.default.removeItem(atPath: scratch)  // the bench processes' own logs
        }
        try cluster.startCoordinator(model: model.folder, arguments: ["--depth", "\(depth)"], threads: threads)
        let half = model.size.layers / 2
        let ranges = half > 0 ? ["0..<\(half)", "\(half)..<\(model.size.layers)"] : ["0..<\(model.size.layers)"]
        let join = ["--coordinator", cluster.workers, "--model", model.folder]
        for (index, range) in ranges.enumerated() {
            try cluster.start("stage-\(index)", ["stage"] + join + ["--layers", range], threads: threads)
        }
        try cluster.start("lm-head", ["lm-head"] + join, threads: threads)
        try cluster.start("diffusion-head", ["diffusion-head"] + join, threads: threads)
        let client = BenchClient(client: try ClusterClient(endpoint: cluster.clients))
        try await cluster.waitUntil("the bench cluster", client: client.client, timeout: .seconds(120)) {
            $0.ready && $0.members.count == ranges.count + 2
        }

        progress("cluster: text alone")
        _ = try await client.run(textJob(99))  // warm-up: first-touch of every process's weights
        let alone = try await client.run(textJob(0))
        progress("cluster: one image")
        let image = try await client.run(imageJob(0))
        progress("cluster: text while two images run")
        let imageJobs = [imageJob(1), imageJob(2)]
        async let images = client.runAll(imageJobs)
        try await Task.sleep(for: .milliseconds(200))
        let during = try await client.run(textJob(0))
        _ = try await images

        progress("cluster: throughput of 8 text jobs")
        let jobs = (1...8).map(textJob)
        try await Task.sleep(for: .milliseconds(1100))  // the next heartbeats carry the busy time so far
        let before = try await client.status()
        let start = ContinuousClock.now
        let timings = try await client.runAll(jobs)
        let wall = (ContinuousClock.now - start).seconds
        try await Task.sleep(for: .milliseconds(1100))
        let after = try await client.status()
        let produced = timings.reduce(0) { $0 + $1.tokens.count }

        progress("single process: the same 8 text jobs on every core")
        let single = try SingleProcessThroughput(model: model).run(jobs)
        let clusterRate = Double(produced) / wall
        let singleRate = Double(single.tokens) / single.seconds

        var figures = [
            Figure(
                section: "cluster",
                name: "time to first token",
                value: (alone.firstToken ?? .zero).seconds * 1000,
                unit: "ms"
            ),
            Figure(
                section: "cluster",
                name: "time per output token",
                value: (alone.timePerToken ?? .zero).seconds * 1000,
                unit: "ms"
            ),
            Figure(
                section: "cluster",
                name: "time per image (\(steps) DDIM steps)",
                value: (image.total ?? .zero).seconds,
                unit: "s"
            ),
            Figure(section: "cluster", name: "throughput, 8 text jobs", value: clusterRate, unit: "tok/s"),
            Figure(
                section: "cluster",
                name: "single-process throughput, same jobs",
                value: singleRate,
                unit: "tok/s"
            ),
            Figure(
                section: "cluster",
                name: "pipeline efficiency",
                value: clusterRate / singleRate,
                unit: "x",
                ratio: clusterRate / singleRate,
                against: "of single process"
            ),
        ]
        if let overlapped = during.timePerToken, let quiet = alone.timePerToken {
            figures.append(
                Figure(
                    section: "cluster",
                    name: "overlap: time/token with images / alone",
                    value: overlapped.seconds / quiet.seconds,
                    unit: "x"
                )
            )
        }
        for member in after.members where member.role == "stage" {
            let earlier = before.members.first { $0.id == member.id }?.busySeconds ?? 0
            figures.append(
                Figure(
                    section: "cluster",
                    name: "stage \(member.layers ?? "") busy fraction",
                    value: (member.busySeconds - earlier) / wall,
                    unit: "of wall"
                )
            )
        }
        figures += try await gatewayFigures(cluster: cluster, client: client, progress: progress)
        precondition(
            produced == single.tokens,
            "the cluster made \(produced) tokens, the single process \(single.tokens)"
        )
        return figures
    }
}

extension ClusterBench {
    /// The gateway's cost per request: `orthus serve` started beside the cluster, and the same text jobs timed to
    /// their first text through it (a streamed chat completion over HTTP) and straight through `ClusterClient`
    /// (ZeroMQ), in alternating turns; the medians side by side.
    func gatewayFigures(
        cluster: ClusterProcesses,
        client: BenchClient,
        progress: (String) -> Void
    ) async throws -> [Figure] {
        progress("cluster: time to first token through the HTTP gateway and straight")
        try cluster.start(
            "gateway",
            [
                "serve", "--coordinator", cluster.clients, "--model", model.folder, "--listen", "127.0.0.1:0",
                "--served-model-name", "bench",
            ],
            threads: 1
        )
        let port = try await Self.gatewayPort(log: cluster.logPath("gateway"))
        let probe = GatewayProbe(port: port, model: "bench")
        var straight: [Double] = []
        var http: [Double] = []
        for turn in 0..<(quick ? 5 : 9) {
            let job = textJob(200 + turn)
            let timing = try await client.run(job)
            straight.append(((timing.firstText ?? timing.submitted) - timing.submitted).seconds * 1000)
            http.append(
                try probe.firstToken(prompt: job.prompt, maxTokens: job.maxTokens, seed: job.seed).seconds * 1000
            )
        }
        let (viaHTTP, direct) = (Self.median(http), Self.median(straight))
        return [
            Figure(section: "cluster", name: "time to first text, straight (ZeroMQ)", value: direct, unit: "ms"),
            Figure(
                section: "cluster",
                name: "time to first text through the HTTP gateway",
                value: viaHTTP,
                unit: "ms",
                ratio: viaHTTP / direct,
                against: "of straight"
            ),
        ]
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// The gateway's port, from its log line "serving NAME on http://HOST:PORT".
    static func gatewayPort(log: String) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let line = try AnnouncedLine.first(startingWith: "serving ", inLogAt: log),
                let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...])
            {
                return port
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the gateway did not say where it listens (see \(log))")
    }
}

/// The same text jobs in one process: the same scheduler over one compute holding every layer and the LM head, with
/// every core (continuous batching, as the cluster does), or one job after another.
struct SingleProcessThroughput {
    let model: BenchModel

    func run(_ specs: [JobSpec], together: Bool = true) throws -> (tokens: Int, seconds: Double) {
        let engine = try LocalEngine(directory: try ModelDirectory(path: model.folder))
        let jobs = specs.map { LocalEngine.Job($0.request) }
        let start = ContinuousClock.now
        let answers = together ? try engine.run(jobs) : try jobs.map { try engine.run([$0])[0] }
        let tokens = try answers.reduce(0) { $0 + (try $1.get()).tokens.count }
        return (tokens, (ContinuousClock.now - start).seconds)
    }
}
