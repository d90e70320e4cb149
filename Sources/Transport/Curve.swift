internal import CZeroMQ
import Foundation
import Synchronization

/// CurveZMQ settings for one socket (authentication and encryption of a link).
public enum CurveSecurity: Sendable, Equatable {
    /// A binding socket: it proves itself with this secret key, and clients are checked by the context's
    /// `ZAPAuthenticator`.
    case server(secretKey: String)
    /// A connecting socket: its own keypair, and the public key the server must prove it holds.
    case client(publicKey: String, secretKey: String, serverKey: String)
}

/// A Curve keypair in Z85 text (40 characters each).
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh keypair. The corresponding C function is `zmq_curve_keypair`.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        func text(_ key: [CChar]) -> String {
            String(decoding: key.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return CurveKeyPair(publicKey: text(publicKey), secretKey: text(secretKey))
    }

    /// The 32 raw bytes of a Z85 key, or nil if it is not one. The corresponding C function is `zmq_z85_decode`.
    public static func decode(_ z85: String) -> [UInt8]? {
        guard z85.utf8.count == 40 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, z85) == nil ? nil : bytes
    }
}

extension ZMQSocket {
    func apply(_ curve: CurveSecurity) throws(ZMQError) {
        switch curve {
        case .server(let secretKey):
            try set(ZMQ_CURVE_SERVER, Int32(1))
            try setKey(ZMQ_CURVE_SECRETKEY, secretKey)
            // Every server socket asks the ZAP handler, so only allowed keys connect.
            try setKey(ZMQ_ZAP_DOMAIN, "orthus")
        case .client(let publicKey, let secretKey, let serverKey):
            try setKey(ZMQ_CURVE_PUBLICKEY, publicKey)
            try setKey(ZMQ_CURVE_SECRETKEY, secretKey)
            try setKey(ZMQ_CURVE_SERVERKEY, serverKey)
        }
    }

    private func setKey(_ option: Int32, _ text: String) throws(ZMQError) {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }
}

/// The context's ZAP handler (RFC 27): libzmq asks it about every Curve client that connects to a server socket of
/// the same context, and it allows only the listed public keys. It runs on its own thread.
public final class ZAPAuthenticator: Sendable {
    private let allowed: Set<[UInt8]>
    private let stopping = Atomic<Bool>(false)
    private let refusedCount = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)

    /// Clients refused so far.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Binds the handler in `context`; `allowedKeys` are Z85 public keys.
    public init(context: ZMQContext, allowedKeys: [String]) throws {
        allowed = Set(allowedKeys.compactMap(CurveKeyPair.decode))
        let socket = try ZMQSocket(context, kind: .router)
        try socket.bind("inproc://zeromq.zap.01")
        let box = SocketBox(socket: socket)
        let thread = Thread { [self] in
            serve(box.socket)
            finished.signal()
        }
        thread.name = "zap"
        thread.start()
    }

    /// Stops the handler's thread.
    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
    }

    private struct SocketBox: @unchecked Sendable {  // handed to the handler thread, used only there
        let socket: ZMQSocket
    }

    /// Requests arrive as [routing, empty, version, request id, domain, address, identity, mechanism, key].
    private func serve(_ socket: ZMQSocket) {
        while !stopping.load(ordering: .relaxed) {
            // A ZAP request that cannot be read is not answered, so libzmq refuses that handshake; the loop goes on.
            guard (try? socket.waitReadable(timeoutMilliseconds: 100)) == true,
                let frames = try? socket.receive(), frames.count >= 9
            else { continue }
            let key = frames[8].bytes
            let ok = frames[7].bytes == Array("CURVE".utf8) && allowed.contains(key)
            if !ok { refusedCount.add(1, ordering: .relaxed) }
            let reply: [[UInt8]] = [
                frames[0].bytes, [], Array("1.0".utf8), frames[3].bytes, Array((ok ? "200" : "400").utf8),
                Array((ok ? "OK" : "key not allowed").utf8), [], [],
            ]
            // Without memory for the reply the handshake goes unanswered, and libzmq refuses it.
            guard let messages = try? reply.map({ try ZMQMessage(bytes: $0) }) else { continue }
            try? socket.send(messages)  // unanswered, the handshake is refused: the safe outcome
        }
    }
}
