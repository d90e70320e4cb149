import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import Synchronization

/// Prometheus metrics for a process: swift-metrics routed to one registry, and an HTTP listener (`--metrics-listen`)
/// serving it at `/metrics` beside `/health` (the process is up) and `/ready` (the role's own readiness).
public enum Telemetry {
    static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// Routes swift-metrics to this process's registry; later calls do nothing. Before it, metrics cost nothing.
    public static func bootstrap() {
        bootstrapped.withLock { done in
            guard !done else { return }
            var factory = PrometheusMetricsFactory(registry: registry)
            // Seconds from a millisecond (an LM-head call) to minutes (a large image).
            factory.defaultDurationHistogramBuckets = [
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
                .seconds(30), .seconds(60), .seconds(180),
            ]
            MetricsSystem.bootstrap(factory)
            done = true
        }
    }

    /// The metrics in Prometheus' text format.
    public static func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// Serves `/metrics`, `/health` and `/ready` on `listen` (HOST:PORT; port 0 takes a free one) in the background,
    /// for as long as the process runs; `bound` is told the address once it listens. A listener that cannot start
    /// is reported through `failed` (the role goes on without metrics: they are not worth its work).
    public static func serve(
        listen: String,
        ready: @escaping @Sendable () async -> Bool,
        bound: @escaping @Sendable (String) -> Void,
        failed: @escaping @Sendable (String) -> Void
    ) throws {
        let (host, port) = try address(listen)
        bootstrap()
        let router = Router()
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: exposition())))
        }
        router.get("/health") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        router.get("/ready") { _, _ in
            let isReady = await ready()
            return Response(
                status: isReady ? .ok : .serviceUnavailable,
                body: .init(byteBuffer: ByteBuffer(string: isReady ? "ready\n" : "not ready\n"))
            )
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port)),
            onServerRunning: { channel in bound("http://\(host):\(channel.localAddress?.port ?? port)") },
            logger: Logger(label: "orthus-metrics")
        )
        Task {
            do {
                try await app.run()
            } catch {
                failed("the metrics listener on \(listen) stopped: \(error)")
            }
        }
    }

    /// HOST:PORT split, or an error naming the flag's form.
    public static func address(_ listen: String) throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port), colon > listen.startIndex
        else { throw TelemetryError("'\(listen)' is not HOST:PORT (for example 127.0.0.1:9100)") }
        return (String(listen[..<colon]), port)
    }
}

public struct TelemetryError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A counter fed with absolute totals (what a worker's own counters say): each sample adds what grew since the last.
public final class TotalCounter: Sendable {
    private let counter: FloatingPointCounter
    private let last = Mutex(0.0)

    public init(label: String, dimensions: [(String, String)] = []) {
        counter = FloatingPointCounter(label: label, dimensions: dimensions)
    }

    public func sample(_ total: Double) {
        let grown = last.withLock { last in
            defer { last = max(last, total) }
            return total - last
        }
        if grown > 0 { counter.increment(by: grown) }
    }
}
