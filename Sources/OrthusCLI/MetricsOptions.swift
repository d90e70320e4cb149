import ArgumentParser
import Metrics
import Synchronization
import Telemetry

/// `--metrics-listen`, which every role takes: Prometheus metrics, `/health` and `/ready` over HTTP.
struct MetricsOptions: ParsableArguments {
    @Option(help: "Serve Prometheus metrics at /metrics, and /health and /ready, on HOST:PORT (port 0: any free one).")
    var metricsListen: String?

    func validate() throws {
        guard let metricsListen else { return }
        do {
            _ = try Telemetry.address(metricsListen)
        } catch {
            throw ValidationError("--metrics-listen: \(error)")
        }
    }

    /// Starts the listener when asked (its address goes to stderr as "metrics on http://HOST:PORT"); `/ready`
    /// answers `ready()`. Metric handles made before this call measure nothing: make them after.
    func start(ready: @escaping @Sendable () -> Bool) throws {
        guard let metricsListen else { return }
        try Telemetry.serve(
            listen: metricsListen,
            ready: { ready() },
            bound: { StandardStreams.err("metrics on \($0)\n") },
            failed: { StandardStreams.err("\($0)\n") }
        )
    }

    /// Calls `update` every second (a role's gauges from its own counters), while metrics are served.
    func sample(_ update: @escaping @Sendable () -> Void) {
        guard metricsListen != nil else { return }
        Task {
            while !Task.isCancelled {
                update()
                do {
                    try await Task.sleep(for: .seconds(1))
                } catch {
                    return  // cancelled with the process
                }
            }
        }
    }
}

/// A flag a role raises once it can serve (registered with its coordinator), for `/ready`.
final class ReadyFlag: Sendable {
    private let value = Atomic(false)
    func raise() { value.store(true, ordering: .relaxed) }
    var isUp: Bool { value.load(ordering: .relaxed) }
}
