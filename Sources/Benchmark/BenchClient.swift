import ClusterProtocol
import Coordinator
import Foundation
import Transport
import Wire

/// When each event of one job happened, as a client sees it.
struct JobTiming: Sendable {
    var submitted: ContinuousClock.Instant
    var tokens: [ContinuousClock.Instant] = []
    var finished: ContinuousClock.Instant?

    var firstToken: Duration? { tokens.first.map { $0 - submitted } }
    /// The mean time between output tokens after the first.
    var timePerToken: Duration? {
        guard tokens.count > 1 else { return nil }
        return (tokens.last! - tokens.first!) / (tokens.count - 1)
    }
    var total: Duration? { finished.map { $0 - submitted } }
}

/// Submits jobs to a coordinator and times their events (one DEALER per job).
struct BenchClient: Sendable {
    let endpoint: String
    let context: ZMQContext

    func run(_ spec: JobSpec) async throws -> JobTiming {
        let pump = try SocketPump(context: context, name: "bench-client", kind: .dealer, connect: endpoint)
        defer { pump.stop() }
        var timing = JobTiming(submitted: .now)
        try pump.send(WireMessage(envelope: Envelope(kind: MessageKind.submit.rawValue, job: spec)))
        for await frames in pump.inbound {
            guard let reply = try? WireMessage.parse(frames) else { continue }  // the bench's own coordinator
            switch MessageKind(rawValue: reply.envelope.kind) {
            case .text: timing.tokens.append(.now)
            case .finished:
                timing.finished = .now
                return timing
            case .failure: throw BenchError("the cluster failed a bench job: \(reply.envelope.error)")
            default: continue
            }
        }
        throw BenchError("the coordinator went away during the bench")
    }

    /// Runs jobs at once; returns their timings in order.
    func runAll(_ specs: [JobSpec]) async throws -> [JobTiming] {
        try await withThrowingTaskGroup(of: (Int, JobTiming).self) { group in
            for (index, spec) in specs.enumerated() { group.addTask { (index, try await run(spec)) } }
            var timings = [JobTiming?](repeating: nil, count: specs.count)
            for try await (index, timing) in group { timings[index] = timing }
            return timings.map { $0! }
        }
    }

    func status() async throws -> StatusReport {
        let pump = try SocketPump(context: context, name: "bench-status", kind: .dealer, connect: endpoint)
        defer { pump.stop() }
        try pump.send(WireMessage(envelope: Envelope(kind: MessageKind.status.rawValue)))
        for await frames in pump.inbound {
            // Only the status report is awaited here; the bench's own coordinator sends nothing else on this socket.
            guard let reply = try? WireMessage.parse(frames), reply.envelope.kind == MessageKind.statusReport.rawValue
            else { continue }
            return try JSONDecoder().decode(StatusReport.self, from: Data(reply.envelope.statusJSON.utf8))
        }
        throw BenchError("no status from the coordinator")
    }
}
