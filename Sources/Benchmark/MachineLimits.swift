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

    public static func measure(_ probes: MachineProbes, quick: Bool) -> MachineLimits {
        let repeats = quick ? 3 : 5
        return MachineLimits(
            threads: probes.bandwidth.threads,
            readBytesPerSecondOneThread: probes.bandwidth.with(threads: 1).best(of: repeats),
            readBytesPerSecond: probes.bandwidth.best(of: repeats),
            sgemmFlopsPerSecond: probes.sgemm.best(of: 3)
        )
    }
}
