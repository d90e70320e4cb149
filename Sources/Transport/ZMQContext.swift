internal import CZeroMQ
import Foundation

/// A libzmq context: owns libzmq's own I/O threads. One per process is enough.
///
/// Immutable after init; libzmq contexts are thread-safe.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// libzmq's I/O threads; a socket names the one it uses (`ZMQSocket.Options.ioThread`).
    public let ioThreads: Int

    /// The corresponding C function is `zmq_ctx_new`.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads))
        self.handle = handle
        self.ioThreads = ioThreads
    }

    /// Whether this libzmq was built with CurveZMQ. The corresponding C function is `zmq_has`.
    public static var hasCurve: Bool { zmq_has("curve") == 1 }

    /// The corresponding C function is `zmq_ctx_term`; every socket must be closed first (sockets use linger 0).
    deinit { zmq_ctx_term(handle) }

    /// Ends the process with `status` without terminating the context. `zmq_ctx_term` joins libzmq's I/O threads, and
    /// one may be inside a blocking DNS lookup (reconnecting to a peer whose name no longer resolves, such as a stopped
    /// container's), which a slow resolver can hold for tens of seconds after the role has finished. A process whose
    /// sockets are flushed and closed loses nothing by skipping it: linger is 0.
    public func exitProcess(_ status: Int32 = 0) -> Never { exit(status) }
}
