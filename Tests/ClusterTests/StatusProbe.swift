import ClusterClient
import ClusterProtocol

/// Asks two coordinators for status at the same moment: one under attack and a quiet twin on the same machine. What
/// the attack adds to the answer's time is the difference, since load from anything else on the machine (the other
/// tests, in a full run) delays both alike; the attacked coordinator must answer within 1 s of the quiet one.
struct StatusProbe {
    let attacked: ClusterClient
    let quiet: ClusterClient
    /// The largest delay the attack added to an answer, and the slowest answer under attack.
    private(set) var slowestExtra: Duration = .zero
    private(set) var slowest: Duration = .zero

    /// One status from each; returns the attacked coordinator's.
    mutating func probe() async throws -> StatusReport {
        async let attackedAnswer = Self.timed(attacked)
        async let quietAnswer = Self.timed(quiet)
        let ((report, time), (_, quietTime)) = try await (attackedAnswer, quietAnswer)
        slowest = max(slowest, time)
        slowestExtra = max(slowestExtra, time - quietTime)
        return report
    }

    private static func timed(_ client: ClusterClient) async throws -> (StatusReport, Duration) {
        let start = ContinuousClock.now
        let report = try await client.status(timeout: .seconds(10))
        return (report, ContinuousClock.now - start)
    }
}
