import Foundation
import Tensor

/// The machine's own limits, measured in the same run as everything they are compared with, with the same number
/// of threads as the engine computes with.
public struct MachineLimits: Codable, Sendable {
    public var threads: Int
    /// Read bandwidth over a buffer far larger than the caches, bytes per second: with one thread, and with
    /// `threads` threads each reading its own part (the figure the engine is compared with).
    public var readBytesPerSecondOneThread: Double
    public var readBytesPerSecond: Double
    /// OpenBLAS sgemm on square matrices with `threads` threads, floating-point operations per second.
    public var sgemmFlopsPerSecond: Double

    public static func measure(quick: Bool) -> MachineLimits {
        let threads = ComputeThreads.count
        let probe = BandwidthProbe(quick: quick)
        let repeats = quick ? 3 : 5
        let one = (0..<repeats).map { _ in probe.bytesPerSecond(threads: 1) }.max()!
        let all = (0..<repeats).map { _ in probe.bytesPerSecond(threads: threads) }.max()!
        let n = quick ? 1024 : 2048
        let a = [Float](repeating: 0.5, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let gemm = Stopwatch.best(repeats: 3) {
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
        return MachineLimits(
            threads: threads,
            readBytesPerSecondOneThread: one,
            readBytesPerSecond: all,
            sgemmFlopsPerSecond: 2 * Double(n) * Double(n) * Double(n) / gemm
        )
    }
}

/// A STREAM-like read of a buffer far larger than the caches (256 MiB with `quick`, else 1 GiB). Figures bound by
/// memory bandwidth are timed in turns with this probe, and compared with the best probe of their own turns: the
/// machine is shared, and its bandwidth drifts by tens of percent within one run.
struct BandwidthProbe {
    private let buffer: [Float]

    init(quick: Bool) {
        buffer = [Float](repeating: 1, count: (quick ? 64 : 256) << 20)
    }

    /// One pass with `threads` threads, each reading its own part; bytes per second.
    func bytesPerSecond(threads: Int) -> Double {
        let seconds = Stopwatch.best(repeats: 1) {
            precondition(MemoryProbe.streamSum(buffer, threads: threads) > 0)
        }
        return Double(buffer.count * 4) / seconds
    }

    /// Runs `body` `repeats` times, each turn right after a pass of the probe; returns the shortest time of `body`
    /// and the highest bandwidth of the probe.
    func alongside(
        repeats: Int,
        threads: Int,
        _ body: () throws -> Void
    ) rethrows -> (seconds: Double, bandwidth: Double) {
        var seconds = Double.infinity
        var bandwidth = 0.0
        for _ in 0..<repeats {
            bandwidth = max(bandwidth, bytesPerSecond(threads: threads))
            seconds = min(seconds, try Stopwatch.best(repeats: 1, body))
        }
        return (seconds, bandwidth)
    }
}

extension Figure {
    /// A figure in bytes per second, compared with the bandwidth measured alongside it.
    static func bandwidthBound(section: String, name: String, bytesPerSecond: Double, alongside: Double) -> Figure {
        Figure(
            section: section,
            name: name,
            value: bytesPerSecond / 1e9,
            unit: "GB/s",
            ratio: bytesPerSecond / alongside,
            against: String(format: "of %.1f GB/s read alongside", alongside / 1e9)
        )
    }
}
