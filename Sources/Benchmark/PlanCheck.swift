import Checkpoint
import ClusterClient
import ClusterLauncher
import ClusterProtocol
import Foundation
import Generation
import Planner
import Runtime
import Tensor
import Transport
import Wire

/// `orthus plan --check`: the schedule simulation's predictions against measured runs on this machine. For each
/// configuration (stages, micro-batches in flight, a delay on the link between the first two stages), the same text
/// jobs run through a cluster of real processes with one compute thread each and through the simulation with this
/// host's profile (measured here, at one thread); the table puts tokens per second and time per output token side
/// by side.
public struct PlanCheck {
    public struct Configuration: Sendable {
        public var name: String
        public var ranges: [Range<Int>]
        public var depth: Int
        /// Added one way on the link from stage 0 to stage 1 (a proxy in between).
        public var delayMilliseconds: Double
        /// Started from this spec, as `orthus up` starts one, instead of process by process.
        public var spec: ClusterSpec?

        public init(
            name: String,
            ranges: [Range<Int>],
            depth: Int,
            delayMilliseconds: Double = 0,
            spec: ClusterSpec? = nil
        ) {
            self.name = name
            self.ranges = ranges
            self.depth = depth
            self.delayMilliseconds = delayMilliseconds
            self.spec = spec
        }
    }

    public struct Row: Sendable {
        public var name: String
        public var predicted: ScheduleSimulation.Result
        public var measuredTokensPerSecond: Double
        public var measuredTimePerToken: Double
    }

    let folder: String
    let executable: String
    /// The delay proxy (ops/delay-proxy.py).
    let proxy: String
    let jobs: Int
    let tokens: Int

    public init(folder: String, executable: String, proxy: String, jobs: Int = 8, tokens: Int = 32) {
        self.folder = folder
        self.executable = executable
        self.proxy = proxy
        self.jobs = jobs
        self.tokens = tokens
    }

    func job(_ index: Int) -> JobSpec {
        JobSpec(mode: .text, prompt: "Check prompt number \(index): tell me something.", maxTokens: tokens)
    }

    /// Runs this machine's own plan first (`orthus plan` for one host with this profile, started from its spec as
    /// `orthus up` starts one), then `configurations`.
    public func run(_ configurations: [Configuration], progress: (String) -> Void) async throws -> [Row] {
        let directory = try ModelDirectory(path: folder)
        progress("profiling this host at one thread")
        let threads = ComputeThreads.count
        ComputeThreads.set(1)
        let profile = try HostProfiler(directory: directory).measure()
        ComputeThreads.set(threads)
        let planner = try JobPlanner(directory: directory)
        let prompt = try planner.promptIDs(job(0).prompt).count

        let here = Planner.Host(
            name: profile.host,
            address: "127.0.0.1",
            memoryBytes: profile.memoryBytes,
            cores: profile.cores,
            profile: profile
        )
        let plan = try Planner(
            hosts: [here],
            costs: ModelCosts(try CheckpointSummary(directory)),
            goal: .init(sequences: jobs, rows: jobs, imageShare: 0)
        ).plan()
        var spec = try JSONDecoder().decode(ClusterSpec.self, from: try PlanReport.spec(plan, model: folder))
        // Ports of its own, so the check runs beside anything else on this machine.
        spec.coordinator.listen = "tcp://127.0.0.1:\(try Self.freePort())"
        spec.coordinator.workers = "tcp://127.0.0.1:\(try Self.freePort())"
        for index in spec.stages.indices { spec.stages[index].listen = "tcp://127.0.0.1:\(try Self.freePort())" }
        let planned = Configuration(
            name: "this machine's plan",
            ranges: plan.stages.map(\.layers),
            depth: plan.depth,
            spec: spec
        )
        var rows: [Row] = []
        for configuration in [planned] + configurations {
            progress("\(configuration.name): measuring")
            let (measuredRate, measuredGap, made) = try await measure(configuration)
            var simulation = ScheduleSimulation(
                stages: configuration.ranges.map { .init(layers: $0.count, profile: profile) },
                lmHead: profile,
                links: Array(
                    repeating: ScheduleSimulation.Link(perMessage: profile.messageSeconds),
                    count: configuration.ranges.count + 1
                ),
                lmLink: ScheduleSimulation.Link(perMessage: profile.messageSeconds),
                depth: configuration.depth,
                hiddenSize: directory.configuration.hiddenSize
            )
            if configuration.ranges.count > 1 { simulation.links[1].latency = configuration.delayMilliseconds / 1000 }
            // The jobs as they ran: each made `made / jobs` tokens on average (a job may stop at its stop token).
            let predicted = simulation.run(.init(jobs: jobs, promptTokens: prompt, tokens: max(1, made / jobs)))
            rows.append(
                Row(
                    name: configuration.name,
                    predicted: predicted,
                    measuredTokensPerSecond: measuredRate,
                    measuredTimePerToken: measuredGap
                )
            )
        }
        return rows
    }

    /// The configuration as real processes: tokens per second over the jobs run together, the mean time between a
    /// job's tokens, and the tokens made.
    func measure(_ configuration: Configuration) async throws -> (Double, Double, Int) {
        let scratch = NSTemporaryDirectory() + "orthus-plan-check-" + UUID().uuidString
        let cluster = try ClusterProcesses(executable: executable, logs: scratch)
        var proxyProcess: Process?
        defer {
            proxyProcess?.terminate()
            cluster.stop()
            // The check's own logs in a temporary folder: one left behind costs nothing and changes no result.
            try? FileManager.default.removeItem(atPath: scratch)
        }
        if let spec = configuration.spec {
            try cluster.start(spec)
        } else {
            proxyProcess = try launch(configuration, on: cluster)
        }
        let client = BenchClient(client: try ClusterClient(endpoint: cluster.clients))
        try await cluster.waitUntil("the check's cluster", client: client.client, timeout: .seconds(120)) {
            $0.ready && $0.members.count == cluster.names.count - 1
        }
        _ = try await client.run(job(99))  // warm-up: first touch of every process's weights
        let start = ContinuousClock.now
        let timings = try await client.runAll((0..<jobs).map(job))
        let wall = (ContinuousClock.now - start).seconds
        let made = timings.reduce(0) { $0 + $1.tokens.count }
        let gaps = timings.compactMap { $0.timePerToken?.seconds }
        return (Double(made) / wall, gaps.isEmpty ? 0 : gaps.reduce(0, +) / Double(gaps.count), made)
    }

    /// The configuration's processes one by one, with the delay proxy when it has one (returned, to stop).
    func launch(_ configuration: Configuration, on cluster: ClusterProcesses) throws -> Process? {
        var proxyProcess: Process?
        try cluster.startCoordinator(model: folder, arguments: ["--depth", "\(configuration.depth)"], threads: 1)
        let join = ["--coordinator", cluster.workers, "--model", folder]
        for (index, range) in configuration.ranges.enumerated() {
            let listen = try Self.freePort()
            var arguments = ["stage"] + join + ["--layers", "\(range.lowerBound)..<\(range.upperBound)"]
            arguments += ["--listen", "tcp://127.0.0.1:\(listen)"]
            if index == 1, configuration.delayMilliseconds > 0 {
                let front = try Self.freePort()
                proxyProcess = try Self.startProxy(
                    proxy,
                    listen: front,
                    target: listen,
                    configuration.delayMilliseconds
                )
                arguments += ["--advertise", "tcp://127.0.0.1:\(front)"]
            }
            try cluster.start("stage-\(index)", arguments, threads: 1)
        }
        try cluster.start("lm-head", ["lm-head"] + join, threads: 1)
        try cluster.start("diffusion-head", ["diffusion-head"] + join, threads: 1)
        return proxyProcess
    }

    /// A TCP port free now (bound and released; the stage binds it right after).
    static func freePort() throws -> Int {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, kind: .pull)
        try socket.bind("tcp://127.0.0.1:*")
        let endpoint = try socket.lastEndpoint()
        guard let port = Int(endpoint.split(separator: ":").last ?? "") else {
            throw BenchError("no port in \(endpoint)")
        }
        return port
    }

    static func startProxy(_ script: String, listen: Int, target: Int, _ delay: Double) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "\(listen)", "\(target)", "\(delay)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        // The proxy exits when this pipe closes: with this process, however it ends.
        process.standardInput = Pipe()
        try process.run()
        // It prints one line once it listens.
        guard output.fileHandleForReading.availableData.count > 0 else {
            throw BenchError("the delay proxy \(script) did not start")
        }
        return process
    }
}
