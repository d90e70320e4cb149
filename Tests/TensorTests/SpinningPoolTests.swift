import Foundation
import Synchronization
import Testing

@testable import Tensor

/// The compute pool: every part of every job runs exactly once, back to back and with idle gaps long enough for the
/// workers to park, and a second caller while it is busy is told so (and then splits through libdispatch).
@Suite struct SpinningPoolTests {
    final class Tally: @unchecked Sendable {
        let counts = Mutex<[Int]>([])
        init(parts: Int) { counts.withLock { $0 = [Int](repeating: 0, count: parts) } }
        func hit(_ part: Int) { counts.withLock { $0[part] += 1 } }
        var values: [Int] { counts.withLock { $0 } }
    }

    @Test func everyPartRunsOncePerJobBackToBackAndAfterParking() throws {
        let pool = SpinningPool(workers: 3)
        defer { pool.stop() }
        let tally = Tally(parts: 4)
        for round in 0..<2000 {
            #expect(pool.run { tally.hit($0) })
            if round % 500 == 0 { Thread.sleep(forTimeInterval: 0.01) }  // long past the spin: workers park
        }
        #expect(tally.values == [2000, 2000, 2000, 2000])
    }

    @Test func aBusyPoolRefusesASecondCaller() async throws {
        let pool = SpinningPool(workers: 1)
        let inside = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        let first = Thread {
            _ = pool.run { part in
                guard part == 0 else { return }
                inside.store(true, ordering: .releasing)
                while !release.load(ordering: .acquiring) { usleep(100) }
            }
        }
        first.start()
        while !inside.load(ordering: .acquiring) { usleep(100) }
        #expect(!pool.run { _ in })
        release.store(true, ordering: .releasing)
        while pool.run({ _ in }) == false { usleep(100) }
        pool.stop()
        #expect(!pool.run { _ in }, "a stopped pool runs nothing")
    }

    @Test func splitProductsAreTheSameFromManyThreadsAtOnce() async throws {
        let (m, k, n) = (3, 512, 2048)  // over ComputeThreads.minimumWork, so the product is split
        let x = RowInvariantKernelTests.random(m * k, seed: 5)
        let w = RowInvariantKernelTests.random(n * k, seed: 6)
        let product: @Sendable () -> [Float] = {
            var y = [Float](repeating: 0, count: m * n)
            RowInvariant.linear(x, rows: m, inputs: k, weight: w, outputs: n, into: &y)
            return y
        }
        let alone = product()
        let results = await withTaskGroup(of: [Float].self) { group in
            for _ in 0..<8 { group.addTask { product() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8 && results.allSatisfy { $0 == alone })
    }
}
