import Foundation
import Transport

/// The cost of one cluster message on this host: a PAIR of ZeroMQ sockets over TCP loopback, messages of a
/// micro-batch's size sent back and forth; half the median round trip is one message's cost (framing, libzmq's I/O
/// threads, the kernel's loopback, the wake-up of the reader).
enum MessageProbe {
    static func oneWaySeconds(bytes: Int, rounds: Int = 200) throws -> Double {
        let context = try ZMQContext()
        let a = try ZMQSocket(context, kind: .pair)
        try a.bind("tcp://127.0.0.1:*")
        let b = try ZMQSocket(context, kind: .pair)
        try b.connect(try a.lastEndpoint())
        let payload = [UInt8](repeating: 7, count: bytes)
        func exchange(_ from: ZMQSocket, _ to: ZMQSocket) throws {
            // Until the connection is up a PAIR socket has nowhere to queue: try again for up to 5 s.
            let deadline = ContinuousClock.now + .seconds(5)
            while try !sent(from, try ZMQMessage(bytes: payload)) {
                guard ContinuousClock.now < deadline else { throw BenchError("no loopback connection within 5 s") }
                Thread.sleep(forTimeInterval: 0.001)
            }
            guard try to.waitReadable(timeoutMilliseconds: 5000), try to.receive() != nil else {
                throw BenchError("a loopback message did not arrive within 5 s")
            }
        }
        try exchange(a, b)  // the connection is up once the first message passes
        var times: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            try exchange(a, b)
            try exchange(b, a)
            times.append((ContinuousClock.now - start).seconds)
        }
        return times.sorted()[rounds / 2] / 2
    }

    /// Sends one message; false when the socket cannot take it yet.
    static func sent(_ socket: ZMQSocket, _ message: ZMQMessage) throws -> Bool {
        do {
            try socket.send([message])
            return true
        } catch {
            if error.wouldBlock { return false }
            throw error
        }
    }
}
