import Membership
import Testing

@testable import Coordinator

@Suite struct HeadPoolTests {
    let a = WorkerID(1)
    let b = WorkerID(2)
    let t0 = ContinuousClock.now

    @Test func requestsGoToTheLeastLoadedWorkerAndALostWorkersRequestsAreResent() {
        var pool = HeadPool<String>()
        #expect(pool.dispatch(to: [a, b], at: t0).isEmpty)
        for id in 1...3 { pool.add(UInt64(id), "r\(id)") }
        // Nobody to send to: everything waits.
        #expect(pool.dispatch(to: [], at: t0).isEmpty && pool.backlog == [1, 2, 3])
        let first = pool.dispatch(to: [a, b], at: t0)
        #expect(first.map(\.request) == [1, 2, 3] && first.map(\.worker) == [a, b, a])
        #expect(pool.load(of: a) == 2 && pool.load(of: b) == 1)

        // b answers; a is lost: its two requests are re-sent to b, ahead of a newer request.
        #expect(pool.complete(2) == "r2")
        #expect(pool.complete(2) == nil)
        pool.add(4, "r4")
        #expect(pool.reclaim(from: a) == 2)
        #expect(pool.backlog == [1, 3, 4])
        #expect(pool.reclaim(from: a) == 0)
        let resent = pool.dispatch(to: [b], at: t0)
        #expect(resent.map(\.request) == [1, 3, 4] && resent.allSatisfy { $0.worker == b })
        #expect(resent.map(\.payload) == ["r1", "r3", "r4"] && pool.pending == 3)
    }

    @Test func oneRequestAtATimeAlternatesBetweenIdleWorkers() {
        var pool = HeadPool<Int>()
        var served: [WorkerID] = []
        for id in 1...4 {
            pool.add(UInt64(id), id)
            let send = pool.dispatch(to: [a, b], at: t0)
            served += send.map(\.worker)
            #expect(pool.complete(UInt64(id)) == id)
        }
        #expect(served == [a, b, a, b])
    }

    @Test func aRequestPastItsDeadlineGoesToAnotherWorkerAndALateAnswerIsDropped() {
        var pool = HeadPool<Int>()
        // The service time is learnt from answers: 100 ms, so the deadline is the 250 ms floor (2 x 100 ms is less).
        pool.add(1, 1)
        _ = pool.dispatch(to: [a, b], at: t0)
        #expect(pool.deadline() == .seconds(5))  // nothing learnt yet
        #expect(pool.complete(1, by: a, at: t0 + .milliseconds(100)) == 1)
        #expect(pool.serviceTime == .milliseconds(100) && pool.deadline() == .milliseconds(250))
        // a takes the next request and goes quiet.
        pool.add(2, 2)
        let sent = pool.dispatch(to: [a, b], at: t0 + .seconds(1))
        #expect(sent.map(\.worker) == [b])  // b had not had work for longer
        pool.add(3, 3)
        #expect(pool.dispatch(to: [a, b], at: t0 + .seconds(1)).map(\.worker) == [a])
        #expect(pool.overdue(at: t0 + .milliseconds(1200)).isEmpty)
        let late = pool.overdue(at: t0 + .milliseconds(1300))
        #expect(late.map(\.request) == [2, 3])
        pool.resend(3)
        #expect(pool.slow == [a] && pool.backlog == [3])
        // The slow worker gets no new work; b does.
        #expect(pool.dispatch(to: [a, b], at: t0 + .milliseconds(1300)).map(\.worker) == [b])
        #expect(pool.complete(3, by: b, at: t0 + .milliseconds(1400)) == 3)
        // a's late answer finds the request gone; answering at all takes it off the slow list.
        #expect(pool.complete(3, by: a, at: t0 + .seconds(2)) == nil && pool.slow.isEmpty)
    }

    @Test func deadlinesScaleWithARequestsUnitsAndKindsAreLearntApart() {
        var pool = HeadPool<Int>(deadlineFactor: 3, deadlineFloor: .seconds(1))
        let steps = WorkCost(kind: 1, units: 100)
        pool.add(1, 1, cost: steps)
        pool.add(2, 2, cost: WorkCost(kind: 2))
        _ = pool.dispatch(to: [a, b], at: t0)
        // 100 steps in 2 s: 20 ms a step. A 50-step request may take 3 x 50 x 20 ms; a 10-step one the 1 s floor.
        #expect(pool.complete(1, by: a, at: t0 + .seconds(2)) == 1)
        #expect(pool.serviceTimes[1] == .milliseconds(20))
        #expect(pool.deadline(for: WorkCost(kind: 1, units: 50)) == .seconds(3))
        #expect(pool.deadline(for: WorkCost(kind: 1, units: 10)) == .seconds(1))
        // Kind 2 has no answer yet: its first deadline; request 2 is overdue only past it.
        #expect(pool.deadline(of: 2) == .seconds(5))
        #expect(pool.overdue(at: t0 + .seconds(4)).isEmpty)
        #expect(pool.overdue(at: t0 + .seconds(6)).map(\.request) == [2])
        // A re-sent request keeps its cost.
        pool.add(3, 3, cost: WorkCost(kind: 1, units: 50))
        _ = pool.dispatch(to: [a], at: t0 + .seconds(6))
        pool.resend(3)
        #expect(pool.deadline(of: 3) == .seconds(3))
    }

    @Test func aChainCoversEveryLayerOrThereIsNone() {
        let stages: [(id: WorkerID, layers: Range<Int>)] = [
            (WorkerID(5), 2..<4), (WorkerID(3), 0..<1), (WorkerID(4), 0..<2), (WorkerID(6), 1..<3),
        ]
        // 0..<1 then 1..<3 leaves 3..<4 uncovered; 0..<2, 2..<4 works.
        #expect(PipelineChain.find(stages, layerCount: 4) == [WorkerID(4), WorkerID(5)])
        #expect(PipelineChain.find(stages.filter { $0.id != WorkerID(5) }, layerCount: 4) == nil)
        #expect(PipelineChain.find([(WorkerID(1), 0..<4)], layerCount: 4) == [WorkerID(1)])
        #expect(PipelineChain.find([], layerCount: 4) == nil)
    }
}
