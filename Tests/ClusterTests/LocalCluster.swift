import ClusterClient
import ClusterLauncher
import ClusterProtocol
import Foundation
import Runtime
import TestSupport

/// A cluster of real `orthus` processes on loopback (started by `ClusterProcesses`, as `orthus up` and the bench start
/// theirs), each logging to its own file in a scratch folder. The coordinator binds free ports and prints them; every
/// worker finds it through that line.
final class LocalCluster: @unchecked Sendable {  // used from one test at a time
    let scratch: ScratchFolder
    let model: String
    let processes: ClusterProcesses
    var folder: String { scratch.path }
    var clients: String { processes.clients }
    var workers: String { processes.workers }
    /// Appended to every worker's and every client's command line (Curve keys, for one).
    let workerArguments: [String]
    let clientArguments: [String]

    init(
        model: String = Fixtures.tinyOrthus,
        coordinatorArguments: [String] = [],
        workerArguments: [String] = [],
        clientArguments: [String] = []
    ) throws {
        self.model = model
        self.workerArguments = workerArguments
        self.clientArguments = clientArguments
        scratch = try ScratchFolder("cluster")
        processes = try ClusterProcesses(executable: OrthusProcess.executable, logs: scratch.path)
        try processes.startCoordinator(model: model, arguments: coordinatorArguments)
    }

    deinit { stop() }

    /// Kills the coordinator (SIGKILL, as a crash) and starts a new one on the same endpoints.
    func restartCoordinator(_ arguments: [String], name: String) throws {
        let (clients, workers) = (self.clients, self.workers)
        processes.kill("coordinator")
        try processes.startCoordinator(model: model, listen: clients, workers: workers, arguments: arguments, log: name)
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String], log: String? = nil) throws -> Process {
        try processes.start(name, arguments, log: log)
    }

    func stage(_ name: String, layers: Range<Int>, extra: [String] = []) throws {
        try start(
            name,
            [
                "stage", "--coordinator", workers, "--model", model, "--layers",
                "\(layers.lowerBound)..<\(layers.upperBound)",
            ]
                + extra + workerArguments
        )
    }

    func lmHead(_ name: String) throws {
        try start(name, ["lm-head", "--coordinator", workers, "--model", model] + workerArguments)
    }

    @discardableResult
    func diffusionHead(_ name: String) throws -> Process {
        try start(name, ["diffusion-head", "--coordinator", workers, "--model", model] + workerArguments)
    }

    /// Starts stages named stage-0, stage-1, … over `stages`, an LM-head worker "lm" and a diffusion worker
    /// "diffusion", and waits until all have joined and the cluster is ready.
    @discardableResult
    func startWorkers(stages: [Range<Int>]) async throws -> StatusReport {
        for (index, layers) in stages.enumerated() { try stage("stage-\(index)", layers: layers) }
        try lmHead("lm")
        try diffusionHead("diffusion")
        return try await waitFor("a ready cluster") { $0.ready && $0.members.count == stages.count + 2 }
    }

    func process(_ name: String) -> Process? { processes.process(name) }

    func logPath(_ name: String) -> String { processes.logPath(name) }

    func log(_ name: String) -> String {
        // A log not written yet reads as empty: the tests wait for what they look for.
        (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? ""
    }

    /// The last word of the first line of `name`'s log that starts with `prefix` (an address a process prints
    /// once it listens, such as "metrics on http://HOST:PORT"), waiting up to 30 s for the line.
    func announced(_ name: String, prefix: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let line = try AnnouncedLine.first(startingWith: prefix, inLogAt: logPath(name)),
                let word = line.split(separator: " ").last
            {
                return String(word)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterError("\(name) never logged a line starting '\(prefix)': \(log(name).suffix(2000))")
    }

    /// The coordinator's status report (through `orthus status --json` when the cluster needs client keys).
    func status() async throws -> StatusReport {
        guard clientArguments.isEmpty else {
            let result = try await OrthusProcess.output(
                ["status", "--coordinator", clients, "--json"] + clientArguments
            )
            guard result.status == 0 else { throw ClusterError("status failed: \(result.stderr)") }
            return try JSONDecoder().decode(StatusReport.self, from: Data(result.stdout.utf8))
        }
        return try await ClusterClient(endpoint: clients).status(timeout: .seconds(10))
    }

    /// Polls status until `condition` holds, for up to `seconds`.
    func waitFor(
        _ what: String,
        seconds: Double = 30,
        _ condition: (StatusReport) -> Bool
    ) async throws -> StatusReport {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var last = try await status()
        while !condition(last) {
            guard ContinuousClock.now < deadline else {
                throw ClusterError("timed out waiting for \(what); last status: \(last)")
            }
            try await Task.sleep(for: .milliseconds(50))
            last = try await status()
        }
        return last
    }

    /// Runs `orthus submit` with `arguments` in a child process.
    func submit(_ arguments: [String]) async throws -> OrthusProcess.Output {
        try await OrthusProcess.output(["submit", "--coordinator", clients] + clientArguments + arguments)
    }

    /// SIGTERM to the workers, then the coordinator; SIGKILL for anything still running after 30 and 10 s.
    func stop() { processes.stop() }
}

struct ClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
