import Membership
import Testing

@testable import Coordinator

@Suite struct HeadPoolTests {
    let a = WorkerID(1)
    let b = WorkerID(2)

    @Test func requestsGoToTheLeastLoadedWorkerAndALostWorkersRequestsAreResent() {
        var pool = HeadPool<String>()
        #expect(pool.dispatch(to: [a, b]).isEmpty)
        for id in 1...3 { pool.add(UInt64(id), "r\(id)") }
        // Nobody to send to: everything waits.
        #expect(pool.dispatch(to: []).isEmpty && pool.backlog == [1, 2, 3])
        let first = pool.dispatch(to: [a, b])
        #expect(first.map(\.request) == [1, 2, 3] && first.map(\.worker) == [a, b, a])
        #expect(pool.load(of: a) == 2 && pool.load(of: b) == 1)

        // b answers; a is lost: its two requests are re-sent to b, ahead of a newer request.
        #expect(pool.complete(2) == "r2")
        #expect(pool.complete(2) == nil)
        pool.add(4, "r4")
        pool.reclaim(from: a)
        #expect(pool.backlog == [1, 3, 4])
        let resent = pool.dispatch(to: [b])
        #expect(resent.map(\.request) == [1, 3, 4] && resent.allSatisfy { $0.worker == b })
        #expect(resent.map(\.payload) == ["r1", "r3", "r4"] && pool.pending == 3)
    }

    @Test func oneRequestAtATimeAlternatesBetweenIdleWorkers() {
        var pool = HeadPool<Int>()
        var served: [WorkerID] = []
        for id in 1...4 {
            pool.add(UInt64(id), id)
            let send = pool.dispatch(to: [a, b])
            served += send.map(\.worker)
            #expect(pool.complete(UInt64(id)) == id)
        }
        #expect(served == [a, b, a, b])
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
