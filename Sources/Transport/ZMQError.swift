internal import CZeroMQ

/// An error from libzmq: the errno it reported and its text (`zmq_strerror`).
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    public let code: Int32
    public let operation: String

    /// Reads `zmq_errno()`; call it right after the failing call. The corresponding C function is `zmq_errno`.
    static func last(_ operation: String) -> ZMQError { ZMQError(code: zmq_errno(), operation: operation) }

    public var description: String { "\(operation): \(String(cString: zmq_strerror(code))) (errno \(code))" }

    /// The call would block (nothing to receive, or the high-water mark is reached).
    public var wouldBlock: Bool { code == EAGAIN }
    /// The context is being terminated: the socket must close.
    public var terminated: Bool { code == ETERM }
    /// Interrupted by a signal; the call may be retried.
    public var interrupted: Bool { code == EINTR }
}
