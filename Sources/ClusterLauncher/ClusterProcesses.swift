import ClusterClient
import ClusterProtocol
import Foundation
import Runtime
import Transport

/// The processes of a cluster on this machine, each logging to its own file: what `orthus up`, the bench and the
/// tests start. Workers are stopped before the coordinator (head workers drain on SIGTERM); stragglers are killed.
public final class ClusterProcesses: @unchecked Sendable {  // driven by one task at a time
    public let logs: String
    let executable: String
    /// The coordinator's client and worker endpoints, once it runs.
    public private(set) var clients = ""
    public private(set) var workers = ""
    private var children: [(name: String, process: Process)] = []

    /// `executable` is the `orthus` binary the processes run; `logs` the folder for `NAME.log`.
    public init(executable: String, logs: String) throws {
        self.executable = executable
        self.logs = logs
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    }

    deinit { stop() }

    public func logPath(_ name: String) -> String { logs + "/\(name).log" }

    public func process(_ name: String) -> Process? { children.last { $0.name == name }?.process }

    public var names: [String] { children.map(\.name) }

    /// Starts a process; `threads` sets its compute and OpenBLAS thread count; `wrapper` runs it under another command
    /// (`ip netns exec NS` starts it on a network namespace's host; that command execs it, so signals reach it).
    @discardableResult
    public func start(
        _ name: String,
        _ arguments: [String],
        threads: Int? = nil,
        log: String? = nil,
        under wrapper: [String] = []
    ) throws -> Process {
        let command = wrapper + [executable] + arguments
        let process = try ChildProcess.start(
            executable: command[0],
            arguments: Array(command.dropFirst()),
            threads: threads,
            log: logPath(log ?? name)
        )
        children.removeAll { $0.name == name && !$0.process.isRunning }
        children.append((name, process))
        return process
    }

    /// Starts the coordinator and learns its endpoints from its log (wildcard ports are bound by the coordinator).
    public func startCoordinator(
        model: String,
        listen: String = "tcp://127.0.0.1:*",
        workers: String = "tcp://127.0.0.1:*",
        arguments: [String] = [],
        log: String = "coordinator",
        threads: Int? = nil,
        under wrapper: [String] = []
    ) throws {
        let command = ["coordinator", "--model", model, "--listen", listen, "--workers", workers] + arguments
        try start("coordinator", command, threads: threads, log: log, under: wrapper)
        guard let endpoints = try CoordinatorAnnouncement.wait(forLogAt: logPath(log)) else {
            throw LaunchError("the coordinator did not start; see \(logPath(log))")
        }
        (clients, self.workers) = endpoints
    }

    /// Kills a process with SIGKILL, as a crash would, and waits for it.
    public func kill(_ name: String) {
        guard let process = process(name) else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Every process of a spec: the coordinator, the stages, the head workers; `extra` goes to every command line.
    public func start(_ spec: ClusterSpec) throws {
        let security = spec.curveDir.map { ["--curve-dir", $0] } ?? []
        func metrics(_ listen: String?) -> [String] { listen.map { ["--metrics-listen", $0] } ?? [] }
        try startCoordinator(
            model: spec.model,
            listen: spec.coordinator.listen,
            workers: spec.coordinator.workers,
            arguments: security + metrics(spec.coordinator.metricsListen)
                + (spec.coordinator.depth.map { ["--depth", "\($0)"] } ?? []),
            threads: 1
        )
        let (model, coordinator) = (spec.model, spec.coordinator.workers)
        for (index, stage) in spec.stages.enumerated() {
            let command = [
                "stage", "--coordinator", coordinator, "--model", model, "--layers", stage.layers, "--listen",
                stage.listen,
            ]
            try start(
                "stage-\(index)",
                command + security + metrics(stage.metricsListen),
                threads: stage.blasThreads ?? 1
            )
        }
        for (index, head) in spec.lmHeads.enumerated() {
            let command = ["lm-head", "--coordinator", coordinator, "--model", model]
            try start(
                "lm-head-\(index)",
                command + security + metrics(head.metricsListen),
                threads: head.blasThreads ?? 1
            )
        }
        for (index, head) in spec.diffusionHeads.enumerated() {
            let command = ["diffusion-head", "--coordinator", coordinator, "--model", model]
            try start(
                "diffusion-head-\(index)",
                command + security + metrics(head.metricsListen),
                threads: head.blasThreads ?? 1
            )
        }
        if let gateway = spec.gateway {
            var command = [
                "serve", "--coordinator", spec.coordinator.listen, "--model", model, "--listen", gateway.listen,
            ]
            if let keys = gateway.apiKeys { command += ["--api-keys", keys] }
            if let name = gateway.servedModelName { command += ["--served-model-name", name] }
            // The gateway is a client: with keys it uses the admin key, as `orthus submit` does by default.
            try start("gateway", command + security, threads: 1)
        }
    }

    /// Asks the coordinator for its status until `condition` holds; fails when `timeout` passes or a process
    /// exits, naming its log. (Readiness lives in another process: asking is the only way to learn it.)
    @discardableResult
    public func waitUntil(
        _ what: String,
        client: ClusterClient,
        timeout: Duration,
        _ condition: (StatusReport) -> Bool
    ) async throws -> StatusReport {
        let deadline = ContinuousClock.now + timeout
        var last: StatusReport?
        while ContinuousClock.now < deadline {
            if let dead = children.first(where: { !$0.process.isRunning }) {
                throw LaunchError(
                    "\(dead.name) exited (status \(dead.process.terminationStatus)); see \(logPath(dead.name))"
                )
            }
            do {
                let report = try await client.status(timeout: .seconds(2))
                if condition(report) { return report }
                last = report
            } catch let error as ClientError {
                // Not answering yet is what this loop waits out; the deadline reports it.
                if case .badEndpoint = error { throw error }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LaunchError(
            "timed out after \(timeout) waiting for \(what); last status: \(last.map { "\($0)" } ?? "none")"
        )
    }

    /// SIGTERM to the workers (head workers drain), then to the coordinator; SIGKILL after 30 and 10 s.
    public func stop() {
        let workers = children.filter { $0.name != "coordinator" }.map(\.process)
        let coordinator = children.filter { $0.name == "coordinator" }.map(\.process)
        for (group, seconds) in [(workers, 30.0), (coordinator, 10.0)] {
            for process in group where process.isRunning { process.terminate() }
            for process in group { Self.wait(process, seconds: seconds) }
        }
        children = []
    }

    /// Waits for a process to exit, up to `seconds`, then kills it.
    static func wait(_ process: Process, seconds: Double) {
        let exited = DispatchSemaphore(value: 0)
        let waiter = Thread {
            process.waitUntilExit()
            exited.signal()
        }
        waiter.start()
        if exited.wait(timeout: .now() + seconds) == .timedOut {
            Foundation.kill(process.processIdentifier, SIGKILL)
            exited.wait()
        }
    }
}

/// Why a cluster could not be started.
public struct LaunchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
