import ArgumentParser
import ClusterClient
import ClusterLauncher
import ClusterProtocol
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
        // Its error names the file and what is wrong with it (not a usage error: no usage text after it).
        let spec = try ClusterSpec.load(self.spec)
        let signals = TerminationSignals.stream()
        let cluster = try ClusterProcesses(executable: Self.executablePath, logs: logs)
        try cluster.start(spec)
        StandardStreams.err("started \(cluster.names.count) processes; logs in \(logs)/\n")
        // The operator's admin key watches the cluster become ready.
        let keys = try spec.curveDir.map { try ClusterKeys.client($0, name: "admin") }
        let client = try ClusterClient(
            endpoint: spec.coordinator.listen,
            options: keys?.client() ?? ZMQSocket.Options()
        )
        do {
            try await cluster.waitUntil(
                "the cluster to be ready",
                client: client,
                timeout: .milliseconds(Int(readyTimeout * 1000))
            ) { $0.ready }
        } catch {
            StandardStreams.err("\(error)\n")
            cluster.stop()
            throw ExitCode(1)
        }
        StandardStreams.err(
            "cluster ready: orthus submit --coordinator \(spec.coordinator.listen) --prompt ...   (Ctrl-C stops it)\n"
                + (spec.gateway.map { "OpenAI-compatible API: http://\($0.listen)/v1\n" } ?? "")
        )
        var iterator = signals.makeAsyncIterator()
        _ = await iterator.next()
        cluster.stop()
        StandardStreams.err("cluster stopped\n")
    }

    /// This executable, so children run the same build.
    static var executablePath: String {
        Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
