import ClusterProtocol
import Membership
import Transport
import Wire

extension SocketPump {
    /// The request loop of a head-pool worker: each message is parsed once; the coordinator's acceptance of this
    /// worker's drain ends the loop (everything sent before it has been received); a message that cannot be read or
    /// served is counted through `rejected` and answered with a failure naming the reason.
    func servePool(rejected: () -> Void, _ handle: (WireMessage) async throws -> Void) async {
        for await frames in inbound {
            var envelope: Envelope?
            do {
                let message = try WireMessage.parse(frames)
                envelope = message.envelope
                if message.envelope.kind == MessageKind.drainAccepted.rawValue { return }
                try await handle(message)
            } catch {
                rejected()
                sendFailure(about: envelope, error: error)
            }
        }
    }
}
