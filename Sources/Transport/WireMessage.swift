import Wire

/// A cluster message as it crosses a socket: routing frames (ROUTER peers), the envelope, and one raw frame per
/// tensor descriptor.
public struct WireMessage: Sendable {
    /// Identity frames a ROUTER socket prepends (empty on other socket kinds).
    public var routing: [ZMQMessage]
    public var envelope: Envelope
    public var tensors: [ZMQMessage]

    public init(routing: [ZMQMessage] = [], envelope: Envelope, tensors: [ZMQMessage] = []) {
        self.routing = routing
        self.envelope = envelope
        self.tensors = tensors
    }

    /// The frames to send: routing, envelope, tensors. Checks the tensors against the descriptors first, so a
    /// malformed message is caught at the sender.
    public func frames() throws -> [ZMQMessage] {
        try EnvelopeCodec.validate(envelope, frameSizes: tensors.map(\.count))
        return routing + [try ZMQMessage(bytes: EnvelopeCodec.encode(envelope))] + tensors
    }

    /// Parses and validates received frames; `routingFrames` is 1 for messages read from a ROUTER socket.
    public static func parse(_ frames: [ZMQMessage], routingFrames: Int = 0) throws(WireError) -> WireMessage {
        guard frames.count > routingFrames else { throw .malformedEnvelope }
        let envelope = try frames[routingFrames].withBytes { raw in
            Result { () throws(WireError) in try EnvelopeCodec.decode(raw) }
        }.get()
        let tensors = Array(frames[(routingFrames + 1)...])
        try EnvelopeCodec.validate(envelope, frameSizes: tensors.map(\.count))
        return WireMessage(routing: Array(frames[..<routingFrames]), envelope: envelope, tensors: tensors)
    }
}
