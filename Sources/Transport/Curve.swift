internal import CZeroMQ
import Foundation
import Synchronization

/// CurveZMQ settings for one socket (authentication and encryption of a link).
public enum CurveSecurity: Sendable, Equatable {
    /// A binding socket: it proves itself with this secret key, and connecting peers are checked by the context's
    /// `ZAPAuthenticator` against the keys it admits to `domain` (so a socket admits one kind of peer only).
    case server(secretKey: String, domain: String)
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
        case .server(let secretKey, let domain):
            try set(ZMQ_CURVE_SERVER, Int32(1))
            try setKey(ZMQ_CURVE_SECRETKEY, secretKey)
            // Every server socket asks the ZAP handler, so only keys admitted to its domain connect.
            try setKey(ZMQ_ZAP_DOMAIN, domain)
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
/// the same context. It admits a key only to the domains it was listed for, and answers with that key's user id,
/// which libzmq then attaches to every message from the connection (`ZMQMessage.userID`): a receiver knows which key
/// sent each message. It runs on its own thread.
public final class ZAPAuthenticator: Sendable {
    /// Domain → raw public key → the user id its messages carry.
    private let admitted: [String: [[UInt8]: String]]
    private let stopping = Atomic<Bool>(false)
    private let refusedCount = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)

    /// Clients refused so far.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Binds the handler in `context`; `admitted` maps each ZAP domain to its Z85 public keys and their user ids.
    public init(context: ZMQContext, admitted: [String: [String: String]]) throws {
        self.admitted = admitted.mapValues { keys in
            var raw: [[UInt8]: String] = [:]
            for (key, user) in keys {
                if let bytes = CurveKeyPair.decode(key) { raw[bytes] = user }
            }
            return raw
        }
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
            let domain = String(decoding: frames[4].bytes, as: UTF8.self)
            let user = frames[7].bytes == Array("CURVE".utf8) ? admitted[domain]?[frames[8].bytes] : nil
            if user == nil { refusedCount.add(1, ordering: .relaxed) }
            let reply: [[UInt8]] = [
                frames[0].bytes, [], Array("1.0".utf8), frames[3].bytes, Array((user != nil ? "200" : "400").utf8),
                Array((user != nil ? "OK" : "key not admitted to \(domain)").utf8), Array((user ?? "").utf8), [],
            ]
            // Without memory for the reply the handshake goes unanswered, and libzmq refuses it.
            guard let messages = try? reply.map({ try ZMQMessage(bytes: $0) }) else { continue }
            try? socket.send(messages)  // unanswered, the handshake is refused: the safe outcome
        }
    }
}
