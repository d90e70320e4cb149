import ArgumentParser
import ClusterProtocol
import Coordinator
import Foundation
import Synchronization
import Transport
import Wire

/// A client's connection to the coordinator's client endpoint: one DEALER, replies as a stream, and a watchdog that
/// gives up when the coordinator does not answer in time.
final class ClusterClient: Sendable {
    let endpoint: String
    let pump: SocketPump
    private let answered = Atomic<Bool>(false)
    private let gaveUp = Atomic<Bool>(false)

    init(endpoint: String, options: ZMQSocket.Options = ZMQSocket.Options()) throws {
        self.endpoint = endpoint
        pump = try SocketPump(
            context: try ZMQContext(),
            name: "client",
            kind: .dealer,
            options: options,
            connect: endpoint
        )
    }

    /// Sends a request; if nothing comes back within `timeout`, the reply stream ends and `timedOut` is set.
    func send(_ message: WireMessage, timeout: Duration) throws {
        try pump.send(message)
        Task { [self] in
            // Cancelled or not, the deadline check below is what matters.
            try? await Task.sleep(for: timeout)
            if !answered.load(ordering: .relaxed) {
                gaveUp.store(true, ordering: .relaxed)
                pump.stop()
            }
        }
    }

    /// Replies, parsed; unreadable ones are skipped (the coordinator is this socket's only peer, and a reply it
    /// could not frame never arrives: the timeout reports it).
    func replies() -> AsyncCompactMapSequence<AsyncStream<[ZMQMessage]>, WireMessage> {
        pump.inbound.compactMap { frames in
            self.answered.store(true, ordering: .relaxed)
            return try? WireMessage.parse(frames)
        }
    }

    var timedOut: Bool { gaveUp.load(ordering: .relaxed) }

    var noAnswer: String { "no answer from the coordinator at \(endpoint)" }

    /// Asks for the coordinator's status report.
    func status(timeout: Duration) async throws -> StatusReport {
        try send(WireMessage(envelope: Envelope(kind: MessageKind.status.rawValue)), timeout: timeout)
        for await reply in replies() where reply.envelope.kind == MessageKind.statusReport.rawValue {
            return try JSONDecoder().decode(StatusReport.self, from: Data(reply.envelope.statusJSON.utf8))
        }
        throw ClientError(noAnswer)
    }
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// How a client reaches the coordinator: its endpoint and, for a Curve cluster, the keys.
struct ClientConnection: ParsableArguments {
    @Option(help: "The coordinator's client endpoint.")
    var coordinator = "tcp://127.0.0.1:5555"

    @Option(help: "CurveZMQ key folder: cluster.pub and this client's NAME.key (see orthus keys).")
    var curveDir: String?

    @Option(help: "The client key's name in --curve-dir.")
    var keyName = "client"

    func open() throws -> ClusterClient {
        let keys = try curveDir.map { try ClusterKeys.client($0, name: keyName) }
        return try ClusterClient(endpoint: coordinator, options: keys?.client() ?? ZMQSocket.Options())
    }
}
