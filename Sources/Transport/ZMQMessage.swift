internal import CZeroMQ
import Foundation

/// libzmq calls this on one of its own threads when it no longer needs a zero-copy buffer; the owner rides in `hint`.
private let releaseOwner: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    if let hint { Unmanaged<AnyObject>.fromOpaque(hint).release() }
}

/// Keeps an array alive while libzmq sends it without copying.
final class FrameOwner<Element: Sendable>: @unchecked Sendable {  // immutable after init
    let values: [Element]
    init(_ values: [Element]) { self.values = values }
}

/// One frame. `zmq_msg_t` lives on the heap because libzmq stores payloads of up to 33 bytes inside the struct.
///
/// Owned by one thread at a time (sent to the I/O thread, or handed out of it).
public final class ZMQMessage: @unchecked Sendable {
    let msg: UnsafeMutablePointer<zmq_msg_t>

    /// An empty message, to receive into. The corresponding C function is `zmq_msg_init`.
    init() {
        msg = .allocate(capacity: 1)
        zmq_msg_init(msg)
    }

    /// A frame holding a copy of `bytes`. The corresponding C function is `zmq_msg_init_size`.
    public init(bytes: some Collection<UInt8>) throws(ZMQError) {
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        guard zmq_msg_init_size(msg, bytes.count) == 0 else {
            let error = ZMQError.last("zmq_msg_init_size")
            msg.deallocate()
            throw error
        }
        let target = UnsafeMutableRawBufferPointer(start: zmq_msg_data(msg), count: bytes.count)
        _ = target.initializeMemory(as: UInt8.self, from: bytes)
        self.msg = msg
    }

    /// A frame that borrows `values` without copying; the array stays alive until libzmq has sent it.
    /// The corresponding C function is `zmq_msg_init_data`.
    public init<Element: Sendable>(borrowing values: [Element]) throws(ZMQError) {
        let owner = FrameOwner(values)
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        let count = values.count * MemoryLayout<Element>.stride
        let retained = Unmanaged.passRetained(owner as AnyObject).toOpaque()
        let base = owner.values.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress) }
        guard count > 0, let base else {
            Unmanaged<AnyObject>.fromOpaque(retained).release()
            zmq_msg_init(msg)
            self.msg = msg
            return
        }
        // The array's storage is not moved while `owner` holds it (a `let` array is never mutated).
        guard zmq_msg_init_data(msg, base, count, releaseOwner, retained) == 0 else {
            let error = ZMQError.last("zmq_msg_init_data")
            Unmanaged<AnyObject>.fromOpaque(retained).release()
            msg.deallocate()
            throw error
        }
        self.msg = msg
    }

    deinit {
        zmq_msg_close(msg)
        msg.deallocate()
    }

    /// Payload size in bytes. The corresponding C function is `zmq_msg_size`.
    public var count: Int { zmq_msg_size(msg) }

    /// Calls `body` with the payload.
    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(msg), count: count))
    }

    /// The user id the ZAP handler gave the connection this frame came in on (under CurveZMQ, who holds the key
    /// that sent it); nil on a connection without one, and on the routing frame a ROUTER adds itself (read it from
    /// a frame the peer sent). The corresponding C function is `zmq_msg_gets`.
    public var userID: String? {
        guard let value = zmq_msg_gets(msg, "User-Id") else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// A copy of the payload.
    public var bytes: [UInt8] { withBytes { Array($0) } }

    /// The payload as an array of `T`, little-endian as the wire is (check the size against a shape first).
    public func array<T: BitwiseCopyable>() -> [T] {
        withBytes { raw in
            let count = raw.count / MemoryLayout<T>.stride
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 {
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * MemoryLayout<T>.stride)])
                    )
                }
                initialized = count
            }
        }
    }
}
