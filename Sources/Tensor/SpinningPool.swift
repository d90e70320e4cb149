internal import CKernels
import Foundation
import Synchronization

/// Worker threads that stay awake for a moment after each job. A decode step is dozens of products of a few hundred
/// microseconds each, separated by norms and attention of a few microseconds; waking a parked thread for each product
/// (as `DispatchQueue.concurrentPerform` does) costs tens of microseconds, so the caller finishes its share and waits.
/// Here a worker spins for `spinLimit` after a job before it parks, so back-to-back products find it running, and an
/// idle process's workers park quickly instead of spinning against the I/O threads and the other processes.
///
/// The workers hold the pool: it lives until `stop()` lets them end.
final class SpinningPool: @unchecked Sendable {  // job and parking state are guarded by the atomics and the lock
    let workers: Int
    /// How long a worker looks for the next job before it parks.
    static let spinLimit = Duration.microseconds(100)

    private let generation = Atomic<UInt64>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let parking = NSCondition()
    private nonisolated(unsafe) var job: ((Int) -> Void)?

    init(workers: Int) {
        self.workers = workers
        for index in stride(from: 1, through: workers, by: 1) {
            let thread = Thread { self.serve(part: index) }
            thread.name = "orthus-compute-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(0)` on the calling thread and `body(1...workers)` on the workers, and returns when all are done.
    /// Returns false without running anything when another caller holds the pool.
    func run(_ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(body) { body in
            job = body
            remaining.store(workers, ordering: .relaxed)
            wake()
            body(0)
            while remaining.load(ordering: .acquiring) > 0 { spinPause() }
            job = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Waits for a job in progress, then lets the workers end; the pool refuses every later `run`.
    func stop() {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { spinPause() }
        stopping.store(true, ordering: .relaxed)
        wake()
    }

    private func wake() {
        generation.add(1, ordering: .releasing)
        parking.lock()
        parking.broadcast()
        parking.unlock()
    }

    private func serve(part: Int) {
        var seen: UInt64 = 0
        while true {
            let deadline = ContinuousClock.now + Self.spinLimit
            var current = generation.load(ordering: .acquiring)
            while current == seen && ContinuousClock.now < deadline {
                for _ in 0..<64 { spinPause() }
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                parking.lock()
                while generation.load(ordering: .acquiring) == seen { parking.wait() }
                parking.unlock()
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .relaxed) { return }
            job?(part)
            remaining.subtract(1, ordering: .releasing)
        }
    }
}

@inline(__always) private func spinPause() { ck_spin_pause() }
