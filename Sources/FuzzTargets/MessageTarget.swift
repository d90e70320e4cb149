import ClusterProtocol
import Transport
import Wire

/// Every decoder of cluster messages on one input: the envelope (protobuf) with its tensor frames, then each message
/// type's reader, as the coordinator, the stages and the head workers read what arrives on their sockets.
public enum MessageTarget {
    /// The sizes the readers check tensors against (small, so the fuzzer can match them).
    static let hiddenSize = 16
    static let latentDim = 8
    static let patches = 4

    public static func run(_ bytes: [UInt8]) {
        let frames = FuzzInput.frames(bytes)
        guard let first = frames.first else { return }
        // The first byte of the first frame says whether a routing frame comes first (as on a ROUTER socket).
        let routing = first.first.map { Int($0 & 1) } ?? 0
        let messages: [ZMQMessage]
        do {
            messages = try frames.map { try ZMQMessage(bytes: $0) }
        } catch {
            fatalError("cannot make a frame: \(error)")  // only when memory runs out
        }
        let message: WireMessage
        do {
            message = try WireMessage.parse(messages, routingFrames: routing)
        } catch {
            return  // refused: the expected outcome for most inputs
        }
        let envelope = message.envelope
        // Each reader refuses what does not fit it; only a crash would be a finding.
        _ = try? ClientMessage(message)
        _ = try? MembershipMessage(message)
        _ = StageControl(envelope)
        _ = try? StageBatch.parse(message)
        _ = try? TokenRequest.parse(message, hiddenSize: hiddenSize)
        _ = try? TokenReply.parse(message, rows: Int(envelope.outstanding % 8), vocabularySize: 100)
        _ = try? PatchRequest.parse(message, hiddenSize: hiddenSize, latentDim: latentDim)
        _ = try? PatchReply.parse(message, patches: patches, latentDim: latentDim)
        _ = try? ImageLatents.parse(message, patches: patches, latentDim: latentDim)
        _ = try? ImagePNG.parse(message)
        _ = PeerIdentity(userID: envelope.error)
    }
}
