import Testing

@testable import Coordinator

@Suite struct MicroBatchClockTests {
    let t0 = ContinuousClock.now

    @Test func aMicroBatchsDeadlineScalesWithItsRowsAndNeverUnderestimatesEitherCase() {
        var clock = MicroBatchClock(factor: 3, floor: .seconds(2), firstDeadline: .seconds(60))
        clock.sent(1, rows: 100, at: t0)
        #expect(clock.deadline(rows: 1) == .seconds(60))  // nothing learnt
        // A 100-row prefill in 4 s: 4 s a micro-batch, 40 ms a row.
        clock.answered(1, at: t0 + .seconds(4))
        #expect(clock.perBatch == .seconds(4) && clock.perRow == .milliseconds(40))
        #expect(clock.deadline(rows: 1) == .seconds(12))  // the batch average rules a small one
        #expect(clock.deadline(rows: 500) == .seconds(60))  // 3 x 500 x 40 ms
        // Overdue in send order; one forgotten (abandoned) or answered is not.
        clock.sent(2, rows: 1, at: t0 + .seconds(5))
        clock.sent(3, rows: 1, at: t0 + .seconds(5))
        clock.sent(4, rows: 1, at: t0 + .seconds(6))
        #expect(clock.oldestOverdue(at: t0 + .seconds(17)) == nil)
        clock.forget(2)
        let late = clock.oldestOverdue(at: t0 + .seconds(17.5))
        #expect(late?.microBatch == 3 && late?.deadline == .seconds(12))
        clock.reset()
        #expect(clock.oldestOverdue(at: t0 + .seconds(100)) == nil && clock.inFlight == 0)
    }
}
