import ClusterProtocol
import Membership
import Transport
import Wire

extension SocketPump {
    /// The request loop of a head-pool worker: each message is parsed once; the coordinator's acceptance of this
    /// worker's drain ends the loop (everything sent before it has been received); a message that cannot be read or
    /// served is counted through `rejected` and answered with a failure naming the reason (a failure report itself is
    /// not answered).
    func servePool(rejected: () -> Void, _ handle: (WireMessage) async throws -> Void) async {
        for await frames in inbound {
            var envelope: Envelope?
            do {
                let message = try WireMessage.parse(frames)
                envelope = message.envelope
                if message.envelope.kind == MessageKind.drainAccepted.rawValue { return }
                // The coordinator refused something this worker sent (a late answer to a request already answered
                // elsewhere): nothing to do, and a failure is never answered with one (they would echo forever).
                if message.envelope.kind == Envelope.failureKind { continue }
                try await handle(message)
            } catch {
                rejected()
                sendFailure(about: envelope, error: error)
            }
        }
    }
}
