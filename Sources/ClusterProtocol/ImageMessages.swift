import Tensor
import Transport
import Wire

/// One image's latents for a job, `requestID` and `jobID` in the envelope and frame `latents` f32 [patches, latent]:
/// a decode request (kind decodeImage, coordinator → diffusion worker) or an encoded picture (kind encodedImage, the
/// answer to an encode request).
public struct ImageLatents: Sendable, Equatable {
    public var kind: MessageKind
    public var requestID: UInt64
    public var job: UInt64
    public var latents: Matrix

    public init(_ kind: MessageKind, requestID: UInt64, job: UInt64, latents: Matrix) {
        precondition(kind == .decodeImage || kind == .encodedImage, "latents travel as decodeImage or encodedImage")
        self.kind = kind
        self.requestID = requestID
        self.job = job
        self.latents = latents
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: kind.rawValue,
                jobID: job,
                tensors: [TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.rows, latents.columns])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(borrowing: latents.storage)]
        )
    }

    /// Reads one image's latents, `patches` rows of `latentDim`.
    public static func parse(_ message: WireMessage, patches: Int, latentDim: Int) throws -> ImageLatents {
        let e = message.envelope
        guard let kind = e.messageKind, kind == .decodeImage || kind == .encodedImage else {
            throw HeadRequestError.unexpectedKind(e.kind)
        }
        guard e.tensors.count == 1, e.tensors[0].name == "latents", e.tensors[0].dtype == .float32,
            e.tensors[0].shape == [patches, latentDim]
        else { throw HeadRequestError.tensors("an image's latents must be float32 [\(patches), \(latentDim)]") }
        let latents = Matrix(rows: patches, columns: latentDim, values: message.tensors[0].array())
        return ImageLatents(kind, requestID: e.requestID, job: e.jobID, latents: latents)
    }
}

/// One picture for a job as PNG bytes, `requestID` and `jobID` in the envelope and frame `png` u8 [bytes]: an encode
/// request (kind encodeImage, an image-to-text job's input) or a decoded image (kind decodedImage, the answer to a
/// decode request).
public struct ImagePNG: Sendable, Equatable {
    public var kind: MessageKind
    public var requestID: UInt64
    public var job: UInt64
    public var png: [UInt8]

    public init(_ kind: MessageKind, requestID: UInt64, job: UInt64, png: [UInt8]) {
        precondition(kind == .encodeImage || kind == .decodedImage, "PNGs travel as encodeImage or decodedImage")
        self.kind = kind
        self.requestID = requestID
        self.job = job
        self.png = png
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: kind.rawValue,
                jobID: job,
                tensors: [TensorDescriptor(name: "png", dtype: .uint8, shape: [png.count])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(bytes: png)]
        )
    }

    public static func parse(_ message: WireMessage) throws -> ImagePNG {
        let e = message.envelope
        guard let kind = e.messageKind, kind == .encodeImage || kind == .decodedImage else {
            throw HeadRequestError.unexpectedKind(e.kind)
        }
        guard e.tensors.count == 1, e.tensors[0].name == "png", e.tensors[0].dtype == .uint8 else {
            throw HeadRequestError.tensors("a picture must be png uint8 [bytes]")
        }
        return ImagePNG(kind, requestID: e.requestID, job: e.jobID, png: message.tensors[0].bytes)
    }
}
