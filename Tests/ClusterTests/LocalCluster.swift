import Coordinator
import Foundation
import TestSupport

/// A cluster of real `orthus` processes on loopback, each logging to its own file in a temporary folder.
/// The coordinator binds free ports and prints them; every worker finds it through that line.
final class LocalCluster: @unchecked Sendable {  // used from one test at a time
    let folder: String
    let model: String
    private(set) var clients = ""
    private(set) var workers = ""
    private var processes: [String: Process] = [:]
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
        folder = NSTemporaryDirectory() + "orthus-cluster-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try start(
            "coordinator",
            ["coordinator", "--model", model, "--listen", "tcp://127.0.0.1:*", "--workers", "tcp://127.0.0.1:*"]
                + coordinatorArguments
        )
        guard let endpoints = CoordinatorAnnouncement.wait(forLogAt: logPath("coordinator")) else {
            throw ClusterError("the coordinator did not start: \(log("coordinator"))")
        }
        (clients, workers) = endpoints
    }

    deinit { stop() }

    /// Kills the coordinator (SIGKILL, as a crash) and starts a new one on the same endpoints.
    func restartCoordinator(_ arguments: [String], name: String) throws {
        if let old = processes["coordinator"] {
            kill(old.processIdentifier, SIGKILL)
            old.waitUntilExit()
        }
        try start(
            "coordinator",
            ["coordinator", "--model", model, "--listen", clients, "--workers", workers] + arguments,
            log: name
        )
        guard CoordinatorAnnouncement.wait(forLogAt: logPath(name)) != nil else {
            throw ClusterError("the coordinator did not restart: \(log(name))")
        }
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String], log: String? = nil) throws -> Process {
        let process = try OrthusProcess.start(arguments, log: logPath(log ?? name))
        processes[name] = process
        return process
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

    func process(_ name: String) -> Process? { processes[name] }

    func logPath(_ name: String) -> String { folder + "/\(name).log" }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? ""
    }

    /// `orthus status --json`, decoded.
    func status() async throws -> StatusReport {
        let result = try await OrthusProcess.output(["status", "--coordinator", clients, "--json"] + clientArguments)
        guard result.status == 0 else { throw ClusterError("status failed: \(result.stderr)") }
        return try JSONDecoder().decode(StatusReport.self, from: Data(result.stdout.utf8))
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

    /// SIGTERM to the workers, then the coordinator; SIGKILL for anything still running after 10 s.
    func stop() {
        let workers = processes.filter { $0.key != "coordinator" }.map(\.value)
        let coordinator = processes.filter { $0.key == "coordinator" }.map(\.value)
        for group in [workers, coordinator] {
            for process in group where process.isRunning { process.terminate() }
            let deadline = Date().addingTimeInterval(10)
            while group.contains(where: \.isRunning), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            for process in group where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        processes = [:]
        try? FileManager.default.removeItem(atPath: folder)
    }
}

struct ClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
