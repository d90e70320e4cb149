import ArgumentParser
import Benchmark
import Checkpoint
import Foundation
import Planner
import Runtime

/// `orthus profile`: this host as the engine uses it, for `orthus plan`.
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure this host for the planner: layer, head and VQ times with the model, bandwidth, memory.",
        discussion: "Run it on each host with the model (or one of its geometry) and the threads a stage will use."
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "Write the profile (JSON) here.")
    var out = "host.json"

    func validate() throws {
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent) else {
            throw ValidationError("--out \(out): the folder \(parent) does not exist")
        }
    }

    func run() throws {
        let started = ContinuousClock.now
        let profile = try HostProfiler(directory: try ModelDirectory(path: model.model)).measure {
            StandardStreams.err("measuring \($0)...\n")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(profile).write(to: URL(fileURLWithPath: out))
        let layer = profile.layerSeconds.sorted { $0.key < $1.key }
            .map { String(format: "%d rows %.2f ms", $0.key, $0.value * 1000) }.joined(separator: ", ")
        StandardStreams.out(
            """
            \(profile.host): \(profile.cores) cores, \(Self.gib(profile.memoryBytes)) (\(Self.gib(profile.availableBytes)) \
            free), read \(String(format: "%.1f", profile.readBytesPerSecond / 1e9)) GB/s, sgemm \
            \(String(format: "%.1f", profile.sgemmFlopsPerSecond / 1e9)) GFLOP/s
            one layer: \(layer); prefill of \(profile.prefillChunk) \
            \(String(format: "%.2f", profile.prefillLayerSeconds * 1000)) ms
            LM head \(String(format: "%.3f", profile.lmHeadSecondsPerRow * 1000)) ms/row, diffusion head \
            \(String(format: "%.4f", profile.diffusionSecondsPerRowStep * 1000)) ms/row-step, VQ decode \
            \(String(format: "%.1f", profile.vqDecodeSeconds * 1000)) ms, a message over loopback \
            \(String(format: "%.3f", profile.messageSeconds * 1000)) ms
            wrote \(out) in \(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s

            """
        )
    }

    static func gib(_ bytes: Int) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }
}

/// `orthus plan`: where stages and head workers go on profiled hosts, and what that predicts.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Choose stages, layer ranges and head workers for a set of profiled hosts, and predict throughput.",
        discussion: """
            --hosts is a JSON list of hosts: {"name", "address", "profile": "FILE from orthus profile"} and optionally \
            "memoryGB" and "cores" (default: the profile's). Profile paths are relative to the hosts file.
            """
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "The hosts (JSON); not needed with --check.")
    var hosts: String?

    @Flag(
        help: """
            Check the schedule simulation against this machine instead of planning: the same text jobs through \
            clusters of real processes (1 and 2 stages, 1 to 4 micro-batches in flight, a stage link slowed by 20 ms \
            through ops/delay-proxy.py) and through the simulation with this host's profile, side by side.
            """
    )
    var check = false

    @Flag(
        help: """
            Also run the event simulation of the schedule on the plan (text jobs: --sequences jobs of 256 tokens), \
            with the hosts' links ("latencyMs" and "gbps" in the hosts file; the coordinator on the first host).
            """
    )
    var simulate = false

    @Option(help: "With --check: text jobs run together, and tokens each.")
    var checkJobs = 8
    @Option(help: "With --check: tokens each job generates.")
    var checkTokens = 32

    @Option(help: "Sequences each stage keeps KV room for, at the model's full context.")
    var sequences = 8

    @Option(help: "Rows per decode micro-batch the stage times are predicted at.")
    var rows = 8

    @Option(help: "Micro-batches in flight (default: one per stage).")
    var depth: Int?

    @Option(help: "Share of jobs that draw a picture, in [0, 1] (the rest are 256-token text jobs).")
    var imageShare = 0.5

    @Option(help: "DDIM steps per patch.")
    var steps = 100

    @Option(help: "Write a spec for `orthus up` here (for hosts that are all this machine).")
    var specOut: String?

    @Option(
        help: """
            Write stage-layers.txt and plan.yaml (a patch: replicas, KV budget, memory) into this folder, for a \
            kustomize overlay of cluster/k8s.
            """
    )
    var k8sOut: String?

    func validate() throws {
        if hosts == nil, !check { throw ValidationError("give --hosts (or --check)") }
        guard sequences > 0, rows > 0, steps > 0 else {
            throw ValidationError("--sequences, --rows and --steps must be positive")
        }
        if let depth, depth <= 0 { throw ValidationError("--depth must be positive") }
        guard (0...1).contains(imageShare) else { throw ValidationError("--image-share must be in [0, 1]") }
    }

    /// A hosts file or profile that cannot be used (not a usage error: no usage text).
    struct InputError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct HostEntry: Decodable {
        var name: String
        var address: String?
        var memoryGB: Double?
        var cores: Int?
        var profile: String
        /// Its network: one-way latency and bandwidth to other hosts.
        var latencyMs: Double?
        var gbps: Double?
    }

    func run() async throws {
        if check { return try await runCheck() }
        let directory = try ModelDirectory(path: model.model)
        let costs = ModelCosts(try CheckpointSummary(directory))
        let (hosts, networks) = try readHosts()
        let planner = Planner(
            hosts: hosts,
            costs: costs,
            goal: .init(sequences: sequences, rows: rows, depth: depth ?? 0, imageShare: imageShare, steps: steps)
        )
        let plan = try planner.plan()
        StandardStreams.out(PlanReport.text(plan, even: planner.evenSplit()))
        if simulate {
            let simulation = planner.simulation(of: plan, coordinator: hosts[0].name, networks: networks)
            let prompt = 32
            let result = simulation.run(.init(jobs: sequences, promptTokens: prompt, tokens: Plan.textJobTokens))
            let idle = result.stageIdle.map { String(format: "%.0f%%", $0 * 100) }.joined(separator: " ")
            StandardStreams.out(
                "simulated (\(sequences) text jobs of \(Plan.textJobTokens) tokens, \(prompt)-token prompts): "
                    + String(
                        format: "%.1f tokens/s, %.2f ms per output token",
                        result.tokensPerSecond,
                        result.timePerToken * 1000
                    )
                    + ", stage idle \(idle)\n"
            )
        }
        if let specOut { try PlanReport.spec(plan, model: model.model).write(to: URL(fileURLWithPath: specOut)) }
        if let k8sOut {
            let (layers, patch) = PlanReport.kubernetes(plan, costs: costs, sequences: sequences)
            try FileManager.default.createDirectory(atPath: k8sOut, withIntermediateDirectories: true)
            try layers.write(toFile: k8sOut + "/stage-layers.txt", atomically: true, encoding: .utf8)
            try patch.write(toFile: k8sOut + "/plan.yaml", atomically: true, encoding: .utf8)
        }
    }

    func runCheck() async throws {
        let layers = try ModelDirectory(path: model.model).configuration.layerCount
        let half = max(1, layers / 2)
        // The coordinator keeps at least one micro-batch in flight per stage, so depth starts at the stage count.
        var configurations: [PlanCheck.Configuration] = [
            .init(name: "1 stage, depth 1", ranges: [0..<layers], depth: 1),
            .init(name: "1 stage, depth 2", ranges: [0..<layers], depth: 2),
        ]
        if layers > 1 {
            let two = [0..<half, half..<layers]
            configurations += [
                .init(name: "2 stages, depth 2", ranges: two, depth: 2),
                .init(name: "2 stages, depth 4", ranges: two, depth: 4),
                .init(name: "2 stages, depth 2, 20 ms stage link", ranges: two, depth: 2, delayMilliseconds: 20),
            ]
        }
        let check = PlanCheck(
            folder: model.model,
            executable: UpCommand.executablePath,
            proxy: "ops/delay-proxy.py",
            jobs: checkJobs,
            tokens: checkTokens
        )
        let rows = try await check.run(configurations) { StandardStreams.err("\($0)...\n") }
        var lines = [
            "configuration                          predicted   measured   measured/   predicted   measured",
            "                                           tok/s      tok/s   predicted    ms/token   ms/token",
        ]
        for row in rows {
            lines.append(
                row.name.padding(toLength: 36, withPad: " ", startingAt: 0)
                    + String(
                        format: "%12.1f %10.1f %11.2f %11.2f %10.2f",
                        row.predicted.tokensPerSecond,
                        row.measuredTokensPerSecond,
                        row.measuredTokensPerSecond / row.predicted.tokensPerSecond,
                        row.predicted.timePerToken * 1000,
                        row.measuredTimePerToken * 1000
                    )
            )
        }
        StandardStreams.out(lines.joined(separator: "\n") + "\n")
    }

    func readHosts() throws -> ([Planner.Host], [String: Planner.Host.Network]) {
        let hosts = self.hosts ?? ""
        let folder = URL(fileURLWithPath: hosts).deletingLastPathComponent()
        let entries: [HostEntry]
        do {
            entries = try JSONDecoder().decode([HostEntry].self, from: Data(contentsOf: URL(fileURLWithPath: hosts)))
        } catch let error as DecodingError {
            throw InputError("--hosts \(hosts) is not a list of hosts: \(error.readable)")
        } catch {
            throw InputError("--hosts " + readableFileError(error, path: hosts))
        }
        var networks: [String: Planner.Host.Network] = [:]
        for entry in entries where entry.latencyMs != nil || entry.gbps != nil {
            networks[entry.name] = .init(
                latencySeconds: (entry.latencyMs ?? 0) / 1000,
                bytesPerSecond: (entry.gbps ?? .infinity) * 1e9 / 8
            )
        }
        let planned = try entries.map { entry in
            let path =
                entry.profile.hasPrefix("/") ? entry.profile : folder.appendingPathComponent(entry.profile).path
            let profile: HostProfile
            do {
                profile = try JSONDecoder().decode(HostProfile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch let error as DecodingError {
                throw InputError("\(path) is not a host profile (orthus profile): \(error.readable)")
            } catch {
                throw InputError("host \(entry.name): " + readableFileError(error, path: path))
            }
            return Planner.Host(
                name: entry.name,
                address: entry.address ?? entry.name,
                memoryBytes: entry.memoryGB.map { Int($0 * Double(1 << 30)) } ?? profile.memoryBytes,
                cores: entry.cores ?? profile.cores,
                profile: profile
            )
        }
        return (planned, networks)
    }
}
