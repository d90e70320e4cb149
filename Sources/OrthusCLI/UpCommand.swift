import ArgumentParser
import Foundation
import Runtime
import Transport

/// `orthus up`: starts a whole cluster on this machine from a spec, waits until it is ready, and stops it cleanly on
/// SIGINT or SIGTERM (head workers drain first, the coordinator goes last).
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a cluster from a spec file (for example cluster/local.json) and stop it cleanly on Ctrl-C.",
        discussion: "Each process logs to --logs/<name>.log and runs with the spec's OpenBLAS thread count."
    )

    @Argument(help: "The cluster spec (JSON).")
    var spec: String

    @Option(help: "Folder for the processes' logs.")
    var logs = "out/cluster-logs"

    @Option(help: "Seconds to wait for the cluster to become ready.")
    var readyTimeout: Double = 120

    func run() async throws {
        let spec = try ClusterSpec.load(self.spec)
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let signals = TerminationSignals.stream()
        var children: [(name: String, process: Process)] = []
        let security = spec.curveDir.map { ["--curve-dir", $0] } ?? []
        func start(_ name: String, _ arguments: [String], threads: Int?) throws {
            let all = arguments + security
            children.append((name, try Self.launch(all, threads: threads ?? 1, log: "\(logs)/\(name).log")))
        }
        let workerEndpoint = spec.coordinator.workers
        try start(
            "coordinator",
            ["coordinator", "--model", spec.model, "--listen", spec.coordinator.listen, "--workers", workerEndpoint],
            threads: 1
        )
        for (index, stage) in spec.stages.enumerated() {
            try start(
                "stage-\(index)",
                [
                    "stage", "--coordinator", workerEndpoint, "--model", spec.model, "--layers", stage.layers,
                    "--listen", stage.listen,
                ],
                threads: stage.blasThreads
            )
        }
        for (index, head) in spec.lmHeads.enumerated() {
            try start(
                "lm-head-\(index)",
                ["lm-head", "--coordinator", workerEndpoint, "--model", spec.model],
                threads: head.blasThreads
            )
        }
        for (index, head) in spec.diffusionHeads.enumerated() {
            try start(
                "diffusion-head-\(index)",
                ["diffusion-head", "--coordinator", workerEndpoint, "--model", spec.model],
                threads: head.blasThreads
            )
        }
        StandardStreams.err("started \(children.count) processes; logs in \(logs)/\n")
        let keys = try spec.curveDir.map(ClusterKeys.cluster)
        let ready = await waitUntilReady(spec.coordinator.listen, keys: keys, children: children)
        if ready {
            StandardStreams.err(
                "cluster ready: orthus submit --coordinator \(spec.coordinator.listen) --prompt ...   (Ctrl-C stops it)\n"
            )
            var iterator = signals.makeAsyncIterator()
            _ = await iterator.next()
        }
        await Self.stop(children)
        if !ready { throw ExitCode(1) }
    }

    private func waitUntilReady(
        _ endpoint: String,
        keys: ClusterKeys?,
        children: [(name: String, process: Process)]
    ) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(readyTimeout * 1000))
        while ContinuousClock.now < deadline {
            if let dead = children.first(where: { !$0.process.isRunning }) {
                StandardStreams.err(
                    "\(dead.name) exited (status \(dead.process.terminationStatus)); see \(logs)/\(dead.name).log\n"
                )
                return false
            }
            // Not reachable or not ready yet is what this loop waits out; the deadline reports it.
            let client = try? ClusterClient(endpoint: endpoint, options: keys?.client() ?? ZMQSocket.Options())
            if let report = try? await client?.status(timeout: .seconds(2)), report.ready {
                return true
            }
            try? await Task.sleep(for: .milliseconds(200))  // cancellation ends the wait at the next check
        }
        StandardStreams.err("the cluster was not ready after \(readyTimeout) s; see \(logs)/\n")
        return false
    }

    static func launch(_ arguments: [String], threads: Int, log: String) throws -> Process {
        try ChildProcess.start(executable: executablePath, arguments: arguments, threads: threads, log: log)
    }

    /// This executable, so children run the same build.
    static var executablePath: String {
        Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    /// Head workers and stages get SIGTERM first (heads drain), the coordinator last; stragglers are killed.
    static func stop(_ children: [(name: String, process: Process)]) async {
        let workers = children.filter { $0.name != "coordinator" }
        for child in workers where child.process.isRunning { child.process.terminate() }
        await waitForExit(workers.map(\.process), seconds: 30)
        for child in children where child.name == "coordinator" && child.process.isRunning { child.process.terminate() }
        await waitForExit(children.map(\.process), seconds: 10)
        for child in children where child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
        StandardStreams.err("cluster stopped\n")
    }

    private static func waitForExit(_ processes: [Process], seconds: Double) async {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while processes.contains(where: \.isRunning), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))  // cancellation ends the wait at the next check
        }
    }
}
