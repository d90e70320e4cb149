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
        let count = (quick ? 64 : 256) << 20  // floats: 256 MiB or 1 GiB
        let buffer = [Float](repeating: 1, count: count)
        let repeats = quick ? 3 : 5
        let one = Stopwatch.best(repeats: repeats) { precondition(MemoryProbe.streamSum(buffer) > 0) }
        let all = Stopwatch.best(repeats: repeats) {
            precondition(MemoryProbe.streamSum(buffer, threads: threads) > 0)
        }
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
            readBytesPerSecondOneThread: Double(count * 4) / one,
            readBytesPerSecond: Double(count * 4) / all,
            sgemmFlopsPerSecond: 2 * Double(n) * Double(n) * Double(n) / gemm
        )
    }
}
