/// Deadlines for micro-batches in the pipeline: when each was sent, and how long the pipeline takes.
///
/// A micro-batch's time from the coordinator through every stage and back depends on its rows (a prefill chunk of
/// hundreds against one decode row) and on what is ahead of it in the stages. The clock learns two moving averages from
/// the answers, the time per micro-batch and the time per row; a micro-batch is expected to take the larger of the
/// average and its rows times the per-row time (each overestimates the other's case, never underestimates its own),
/// and is overdue past `factor` times that, at least `floor`. Before any answer the deadline is `firstDeadline`: a
/// first prefill on a large model is slow.
struct MicroBatchClock {
    private struct Sent {
        var at: ContinuousClock.Instant
        var rows: Int
    }

    private var sent: [UInt64: Sent] = [:]
    /// The micro-batches in the pipeline now.
    var inFlightIDs: [UInt64] { Array(sent.keys) }
    private(set) var perBatch: Duration?
    private(set) var perRow: Duration?
    let factor: Double
    let floor: Duration
    let firstDeadline: Duration

    init(factor: Double = 3, floor: Duration = .seconds(2), firstDeadline: Duration = .seconds(60)) {
        self.factor = factor
        self.floor = floor
        self.firstDeadline = firstDeadline
    }

    /// How long a micro-batch of `rows` may take.
    func deadline(rows: Int) -> Duration {
        guard let perBatch, let perRow else { return firstDeadline }
        return max(floor, max(perBatch, perRow * rows) * factor)
    }

    mutating func sent(_ microBatch: UInt64, rows: Int, at now: ContinuousClock.Instant) {
        sent[microBatch] = Sent(at: now, rows: max(1, rows))
    }

    /// Its output came back: the averages learn from it.
    mutating func answered(_ microBatch: UInt64, at now: ContinuousClock.Instant) {
        guard let batch = sent.removeValue(forKey: microBatch) else { return }
        let took = now - batch.at
        perBatch = perBatch.map { $0 * 0.8 + took * 0.2 } ?? took
        let row = took / batch.rows
        perRow = perRow.map { $0 * 0.8 + row * 0.2 } ?? row
    }

    /// It will not come back (abandoned): no deadline.
    mutating func forget(_ microBatch: UInt64) { sent[microBatch] = nil }

    /// The pipeline is gone: nothing in flight.
    mutating func reset() { sent = [:] }

    /// The oldest micro-batch past its deadline, when it was sent and the deadline it passed.
    func oldestOverdue(
        at now: ContinuousClock.Instant
    ) -> (
        microBatch: UInt64, sentAt: ContinuousClock.Instant, deadline: Duration
    )? {
        sent.filter { now - $0.value.at > deadline(rows: $0.value.rows) }
            .min { $0.key < $1.key }
            .map { ($0.key, $0.value.at, deadline(rows: $0.value.rows)) }
    }

    var inFlight: Int { sent.count }
}
