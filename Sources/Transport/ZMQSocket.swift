internal import CZeroMQ
import Foundation

/// A ZeroMQ socket. Not thread-safe: it lives on one thread (a `SocketPump`'s I/O thread, or a test's).
public final class ZMQSocket {
    public enum Kind: Sendable {
        case router, dealer, push, pull, pair, req, rep

        var value: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .pair: ZMQ_PAIR
            case .req: ZMQ_REQ
            case .rep: ZMQ_REP
            }
        }
    }

    /// Deliberate socket settings (README: "How the cluster works", Sockets).
    public struct Options: Sendable {
        /// Largest message a peer may send; larger ones are dropped by libzmq and the peer is disconnected.
        public var maxMessageBytes: Int64 = 256 << 20
        /// Queued messages per peer before sends block (EAGAIN with `DONTWAIT`): backpressure, never unbounded queues.
        public var sendHighWater: Int32 = 1000
        public var receiveHighWater: Int32 = 1000
        /// Pending messages are dropped at close: a dead peer must not hang shutdown.
        public var lingerMilliseconds: Int32 = 0
        /// ROUTER: fail with EHOSTUNREACH on an unknown peer instead of dropping silently.
        public var routerMandatory = true
        /// ROUTER: a new connection with a routing id already in use takes it over (a restarted worker is not locked
        /// out by its dead predecessor's lingering connection).
        public var routerHandover = true
        /// ROUTER: a message for a peer whose queue is at the high-water mark is dropped (and counted by the pump)
        /// instead of waiting, so a peer that never reads cannot hold back what goes to the others, nor grow this
        /// process's memory (libzmq holds `sendHighWater` messages per peer at most).
        public var dropWhenPeerFull = false
        /// Messages per second the socket's pump reads at most (nil: as fast as they come). Beyond it they wait in
        /// libzmq's pipes and the senders' TCP buffers, so a flood costs its sender, not this process.
        public var receiveRate: Double?
        /// The identity this socket announces to a ROUTER (DEALER/REQ).
        public var routingID: [UInt8]?
        /// CurveZMQ authentication and encryption; nil is plain TCP.
        public var curve: CurveSecurity?
        /// The context's I/O thread that carries this socket's connections (the last one if the context has fewer).
        /// libzmq looks a peer's name up on that thread, and nothing else on it moves while the lookup waits (the name
        /// of a stopped container took a container network's resolver 40 s to fail), so a socket that connects to a
        /// peer whose name may stop resolving takes `lookupThread`, away from the sockets that must keep moving.
        public var ioThread = 0
        /// The thread for sockets that connect to a peer by a name that may stop resolving (the next stage); their
        /// process's context needs two I/O threads.
        public static let lookupThread = 1

        public init() {}
    }

    let handle: UnsafeMutableRawPointer
    public let kind: Kind
    /// See `Options.dropWhenPeerFull`.
    let dropsWhenPeerFull: Bool
    /// See `Options.receiveRate`.
    let receiveRate: Double?
    /// A socket keeps its context alive: `zmq_ctx_term` waits for every socket of the context to close, so a context
    /// released while one of its sockets is open would block forever in its deinit.
    private let context: ZMQContext

    /// The corresponding C function is `zmq_socket`.
    public init(_ context: ZMQContext, kind: Kind, options: Options = Options()) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, kind.value) else { throw ZMQError.last("zmq_socket") }
        self.handle = handle
        self.kind = kind
        self.context = context
        dropsWhenPeerFull = kind == .router && options.dropWhenPeerFull
        receiveRate = options.receiveRate
        try set(ZMQ_AFFINITY, UInt64(1) << UInt64(min(options.ioThread, context.ioThreads - 1)))
        try set(ZMQ_LINGER, options.lingerMilliseconds)
        try set(ZMQ_MAXMSGSIZE, options.maxMessageBytes)
        try set(ZMQ_SNDHWM, options.sendHighWater)
        try set(ZMQ_RCVHWM, options.receiveHighWater)
        if kind == .router, options.routerMandatory { try set(ZMQ_ROUTER_MANDATORY, Int32(1)) }
        if kind == .router, options.routerHandover { try set(ZMQ_ROUTER_HANDOVER, Int32(1)) }
        if let curve = options.curve { try apply(curve) }
        if let id = options.routingID {
            guard id.withUnsafeBytes({ zmq_setsockopt(handle, ZMQ_ROUTING_ID, $0.baseAddress, id.count) }) == 0 else {
                throw ZMQError.last("zmq_setsockopt(ZMQ_ROUTING_ID)")
            }
        }
    }

    /// The corresponding C function is `zmq_close`.
    deinit { zmq_close(handle) }

    func set<T: BitwiseCopyable>(_ option: Int32, _ value: T) throws(ZMQError) {
        let result = withUnsafeBytes(of: value) { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard result == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// The corresponding C function is `zmq_bind`.
    public func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    /// The corresponding C function is `zmq_connect`.
    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*`). The corresponding option is `ZMQ_LAST_ENDPOINT`.
    public func lastEndpoint() throws(ZMQError) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The I/O threads this socket's connections may use, one bit each (`Options.ioThread`). The corresponding option
    /// is `ZMQ_AFFINITY`.
    func ioThreadMask() throws(ZMQError) -> UInt64 {
        var mask: UInt64 = 0
        var size = MemoryLayout<UInt64>.size
        guard zmq_getsockopt(handle, ZMQ_AFFINITY, &mask, &size) == 0 else {
            throw ZMQError.last("zmq_getsockopt(ZMQ_AFFINITY)")
        }
        return mask
    }

    /// Sends `frames` as one multipart message without blocking. The corresponding C function is `zmq_msg_send`.
    /// Throws `wouldBlock` at the high-water mark; a failure after the first frame is reported the same way.
    public func send(_ frames: [ZMQMessage]) throws(ZMQError) {
        for (index, frame) in frames.enumerated() {
            let flags = ZMQ_DONTWAIT | (index < frames.count - 1 ? ZMQ_SNDMORE : 0)
            // zmq_msg_send takes the payload; the message object is reset and can be closed normally.
            guard zmq_msg_send(frame.msg, handle, flags) >= 0 else { throw ZMQError.last("zmq_msg_send") }
        }
    }

    /// Receives one whole multipart message if one is ready, else nil. The corresponding C function is
    /// `zmq_msg_recv`.
    public func receive() throws(ZMQError) -> [ZMQMessage]? {
        var frames: [ZMQMessage] = []
        while true {
            let frame = ZMQMessage()
            if zmq_msg_recv(frame.msg, handle, frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                if error.wouldBlock, frames.isEmpty { return nil }
                throw error
            }
            frames.append(frame)
            if zmq_msg_more(frame.msg) == 0 { return frames }
        }
    }

    /// Waits up to `timeoutMilliseconds` for a message to read. The corresponding C function is `zmq_poll`.
    public func waitReadable(timeoutMilliseconds: Int) throws(ZMQError) -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let ready = zmq_poll(&item, 1, timeoutMilliseconds)
        if ready < 0 {
            let error = ZMQError.last("zmq_poll")
            if error.interrupted { return false }
            throw error
        }
        return item.revents & Int16(ZMQ_POLLIN) != 0
    }
}
