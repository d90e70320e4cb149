import Foundation
import Tensor

/// One of the machine's limits, measured in one short pass (per second). Figures bound by a limit are timed in
/// turns with a pass of its probe and compared with the best probe of their own turns: the machine is shared, and
/// its bandwidth and compute drift by tens of percent within one run.
protocol LimitProbe {
    /// What the probe measures, for the table ("read", "sgemm").
    var label: String { get }
    var unit: String { get }
    /// One pass.
    func measure() -> Double
}

extension LimitProbe {
    /// The best of `passes` passes.
    func best(of passes: Int) -> Double { (0..<passes).map { _ in measure() }.max()! }

    /// Runs `body` `repeats` times, each turn right after a pass of the probe; returns the shortest time of `body`
    /// and the probe's best pass.
    func alongside(repeats: Int, _ body: () throws -> Void) rethrows -> (seconds: Double, limit: Double) {
        var seconds = Double.infinity
        var limit = 0.0
        for _ in 0..<repeats {
            limit = max(limit, measure())
            seconds = min(seconds, try Stopwatch.best(repeats: 1, body))
        }
        return (seconds, limit)
    }

    /// A figure of `perSecond` (in this probe's unit per second) against the limit measured alongside it.
    func figure(section: String, name: String, perSecond: Double, alongside limit: Double) -> Figure {
        Figure(
            section: section,
            name: name,
            value: perSecond / 1e9,
            unit: unit,
            ratio: perSecond / limit,
            against: "of " + String(format: "%.1f", limit / 1e9) + " \(unit) \(label) alongside"
        )
    }
}

/// The probes of one bench run, made once (the bandwidth probe's buffer is 1 GiB) and used by every section.
public struct MachineProbes {
    let bandwidth: BandwidthProbe
    let sgemm: SgemmProbe

    /// Probes with the engine's compute-thread count.
    public init(quick: Bool) {
        bandwidth = BandwidthProbe(quick: quick, threads: ComputeThreads.count)
        sgemm = SgemmProbe(quick: quick)
    }
}

/// A STREAM-like read of a buffer far larger than the caches (256 MiB with `quick`, else 1 GiB), each thread reading
/// its own part.
struct BandwidthProbe: LimitProbe {
    private let buffer: [Float]
    let threads: Int
    var label: String { "read" }
    var unit: String { "GB/s" }

    init(quick: Bool, threads: Int) {
        buffer = [Float](repeating: 1, count: (quick ? 64 : 256) << 20)
        self.threads = threads
    }

    private init(buffer: [Float], threads: Int) {
        self.buffer = buffer
        self.threads = threads
    }

    /// The same buffer read with another thread count.
    func with(threads: Int) -> BandwidthProbe { BandwidthProbe(buffer: buffer, threads: threads) }

    func measure() -> Double {
        let seconds = Stopwatch.best(repeats: 1) {
            precondition(MemoryProbe.streamSum(buffer, threads: threads) > 0)
        }
        return Double(buffer.count * 4) / seconds
    }
}

/// OpenBLAS sgemm on square matrices (1024² with `quick`, else 2048²) with OpenBLAS's threads.
struct SgemmProbe: LimitProbe {
    private let n: Int
    private let a: [Float]
    var label: String { "sgemm" }
    var unit: String { "GFLOP/s" }

    init(quick: Bool) {
        n = quick ? 1024 : 2048
        a = [Float](repeating: 0.5, count: n * n)
    }

    func measure() -> Double {
        var c = [Float](repeating: 0, count: n * n)
        let seconds = Stopwatch.best(repeats: 1) {
            a.withUnsafeBufferPointer { ap in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.linear(
                        ap.baseAddress!,
                        rows: n,
                        inputs: n,
                        weight: ap.baseAddress!,
                        outputs: n,
                        into: cp.baseAddress!
                    )
                }
            }
        }
        // OpenBLAS's worker threads spin for a while after a call (2^28 cycles by default, about 0.1 s here) before
        // they sleep, and a spinning one shares a core with the engine's second compute thread: a product of a few
        // milliseconds measured right after this probe ran at half speed in 3 of 4 `--kernels-only --quick` runs
        // (0 of 4 with OPENBLAS_THREAD_TIMEOUT=4). So the probe returns once they sleep.
        Thread.sleep(forTimeInterval: Self.openBLASIdle)
        return 2 * Double(n) * Double(n) * Double(n) / seconds
    }

    /// Long enough for OpenBLAS's default spin (2^28 cycles) at 2 GHz and up.
    static let openBLASIdle = 0.15
}
