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
        let all = BandwidthProbe(quick: quick, threads: threads)
        let one = all.with(threads: 1)
        let sgemm = SgemmProbe(quick: quick)
        let repeats = quick ? 3 : 5
        return MachineLimits(
            threads: threads,
            readBytesPerSecondOneThread: (0..<repeats).map { _ in one.measure() }.max()!,
            readBytesPerSecond: (0..<repeats).map { _ in all.measure() }.max()!,
            sgemmFlopsPerSecond: (0..<3).map { _ in sgemm.measure() }.max()!
        )
    }
}
