import ClusterClient
import ClusterProtocol
import Foundation
import Wire

/// When each event of one job happened, as a client sees it.
struct JobTiming: Sendable {
    var submitted: ContinuousClock.Instant
    var tokens: [ContinuousClock.Instant] = []
    /// When the first token that decoded to text came (a token may be part of a character).
    var firstText: ContinuousClock.Instant?
    var finished: ContinuousClock.Instant?

    var firstToken: Duration? { tokens.first.map { $0 - submitted } }
    /// The mean time between output tokens after the first.
    var timePerToken: Duration? {
        guard tokens.count > 1 else { return nil }
        return (tokens.last! - tokens.first!) / (tokens.count - 1)
    }
    var total: Duration? { finished.map { $0 - submitted } }
}

/// Submits jobs to a coordinator and times their events, each on its own connection.
struct BenchClient: Sendable {
    let client: ClusterClient

    func run(_ spec: JobSpec) async throws -> JobTiming {
        var timing = JobTiming(submitted: .now)
        _ = try await client.submit(spec, acceptTimeout: .seconds(60)).collect { message in
            guard case .text(_, let piece, _) = message else { return }
            timing.tokens.append(.now)
            if timing.firstText == nil, !piece.isEmpty { timing.firstText = .now }
        }
        timing.finished = .now
        return timing
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

    func status() async throws -> StatusReport { try await client.status(timeout: .seconds(10)) }
}
