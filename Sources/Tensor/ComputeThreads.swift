internal import CBLAS
import Dispatch
import Foundation
import Synchronization

/// How many threads this process computes with: its share of the host's cores. The row-invariant kernels split a
/// product's output columns over them (each element is still computed by one thread in the fixed order, so results
/// do not depend on the count), and OpenBLAS is set to the same count.
///
/// The count comes from `ORTHUS_THREADS`, else `OPENBLAS_NUM_THREADS` (which `orthus up` sets per process from the
/// spec), else the number of cores.
public enum ComputeThreads {
    private static let configured = Atomic<Int>(0)

    /// The current count (resolved from the environment on first use).
    public static var count: Int {
        let value = configured.load(ordering: .relaxed)
        if value > 0 { return value }
        let environment = ProcessInfo.processInfo.environment
        let resolved =
            [environment["ORTHUS_THREADS"], environment["OPENBLAS_NUM_THREADS"]].compactMap { $0.flatMap(Int.init) }
            .first { $0 > 0 } ?? ProcessInfo.processInfo.activeProcessorCount
        set(resolved)
        return resolved
    }

    /// Sets the count for the kernels and OpenBLAS.
    public static func set(_ threads: Int) {
        let threads = max(1, threads)
        configured.store(threads, ordering: .relaxed)
        openblas_set_num_threads(Int32(threads))
    }

    /// Products smaller than this many multiply-adds run on one thread (a hand-off costs a few microseconds).
    static let minimumWork = 1 << 20

    /// Runs `body` over `columns` split into contiguous ranges (multiples of `granule`, the kernel's block, a power
    /// of two), one per thread.
    static func split(columns: Int, granule: Int, work: Int, _ body: @Sendable (Range<Int>) -> Void) {
        let threads = min(count, max(1, columns / granule))
        guard threads > 1, work >= minimumWork else {
            body(0..<columns)
            return
        }
        let chunk = (columns / threads + granule - 1) & ~(granule - 1)
        let part: @Sendable (Int) -> Void = { index in
            guard index < threads else { return }
            let start = index * chunk
            let end = index == threads - 1 ? columns : min(columns, start + chunk)
            if start < end { body(start..<end) }
        }
        // The spinning pool when it is free; a caller that finds it busy (products on several threads at once) splits
        // the same way through libdispatch, so results never depend on which ran.
        if usePool, pool(workers: count - 1).run(part) { return }
        DispatchQueue.concurrentPerform(iterations: threads, execute: part)
    }

    private static let shared = Mutex<SpinningPool?>(nil)

    /// `ORTHUS_SPIN_POOL=0` splits every product through libdispatch instead (to compare the two).
    static let usePool = ProcessInfo.processInfo.environment["ORTHUS_SPIN_POOL"] != "0"

    /// The pool for the current thread count (made again, and the old one stopped, if the count changed).
    static func pool(workers: Int) -> SpinningPool {
        shared.withLock { pool in
            if let existing = pool, existing.workers == workers { return existing }
            pool?.stop()
            let made = SpinningPool(workers: workers)
            pool = made
            return made
        }
    }
}
