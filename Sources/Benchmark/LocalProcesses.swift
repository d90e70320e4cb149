import Coordinator
import Foundation
import Runtime

/// The bench's cluster processes, logging to a temporary folder; the coordinator binds free ports and prints them.
final class LocalProcesses: @unchecked Sendable {  // used by the bench's one task
    let folder: String
    private(set) var clients = ""
    private var processes: [Process] = []

    private init(folder: String) { self.folder = folder }

    static func start(model: BenchModel, executable: String, threadsEach: Int, depth: Int) throws -> LocalProcesses {
        let folder = NSTemporaryDirectory() + "orthus-bench-cluster-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let cluster = LocalProcesses(folder: folder)
        func launch(_ name: String, _ arguments: [String]) throws {
            cluster.processes.append(
                try ChildProcess.start(
                    executable: executable,
                    arguments: arguments,
                    threads: threadsEach,
                    log: folder + "/\(name).log"
                )
            )
        }
        try launch(
            "coordinator",
            [
                "coordinator", "--model", model.folder, "--listen", "tcp://127.0.0.1:*", "--workers",
                "tcp://127.0.0.1:*",
                "--depth", "\(depth)",
            ]
        )
        guard let (clients, workers) = CoordinatorAnnouncement.wait(forLogAt: folder + "/coordinator.log") else {
            cluster.stop()
            throw BenchError("the bench coordinator did not start; see \(folder)/coordinator.log")
        }
        cluster.clients = clients
        let half = model.size.layers / 2
        let ranges = half > 0 ? ["0..<\(half)", "\(half)..<\(model.size.layers)"] : ["0..<\(model.size.layers)"]
        for (index, range) in ranges.enumerated() {
            try launch(
                "stage-\(index)",
                ["stage", "--coordinator", workers, "--model", model.folder, "--layers", range]
            )
        }
        try launch("lm-head", ["lm-head", "--coordinator", workers, "--model", model.folder])
        try launch("diffusion-head", ["diffusion-head", "--coordinator", workers, "--model", model.folder])
        return cluster
    }

    func waitReady(_ client: BenchClient) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            // Not answering yet is what this loop waits out; the deadline reports it.
            if let report = try? await client.status(), report.ready, report.members.count == processes.count - 1 {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw BenchError("the bench cluster was not ready within 120 s; logs in \(folder)")
    }

    func stop() {
        for process in processes.reversed() where process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(10)
        while processes.contains(where: \.isRunning), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: folder)  // scratch logs of the bench's own processes
    }
}
