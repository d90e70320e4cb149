import Foundation
import Tensor

/// The machine's own limits, measured in the same run as everything they are compared with.
public struct MachineLimits: Codable, Sendable {
    /// Single-thread read bandwidth over a buffer far larger than the caches, bytes per second.
    public var readBytesPerSecond: Double
    /// OpenBLAS sgemm on square matrices, floating-point operations per second (with its configured threads).
    public var sgemmFlopsPerSecond: Double

    public static func measure(quick: Bool) -> MachineLimits {
        let count = (quick ? 64 : 256) << 20  // floats: 256 MiB or 1 GiB
        let buffer = [Float](repeating: 1, count: count)
        var sink: Float = 0
        let readTime = Stopwatch.best(repeats: quick ? 3 : 5) { sink += MemoryProbe.streamSum(buffer) }
        precondition(sink > 0)
        let n = quick ? 1024 : 2048
        let a = [Float](repeating: 0.5, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        let gemmTime = Stopwatch.best(repeats: 3) {
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
            readBytesPerSecond: Double(count * 4) / readTime,
            sgemmFlopsPerSecond: 2 * Double(n) * Double(n) * Double(n) / gemmTime
        )
    }
}
