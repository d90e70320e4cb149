import Tensor
import Transport
import Wire

/// Coordinator → diffusion worker: decode one image's latents (envelope kind decodeImage, `requestID`, `jobID`; frame
/// `latents` f32 [patches, latent]); answered by `DecodedImage`.
public struct DecodeRequest: Sendable, Equatable {
    public var requestID: UInt64
    public var job: UInt64
    public var latents: Matrix

    public init(requestID: UInt64, job: UInt64, latents: Matrix) {
        self.requestID = requestID
        self.job = job
        self.latents = latents
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: MessageKind.decodeImage.rawValue,
                jobID: job,
                tensors: [TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.rows, latents.columns])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(borrowing: latents.storage)]
        )
    }

    public static func parse(_ message: WireMessage, patches: Int, latentDim: Int) throws -> DecodeRequest {
        let e = message.envelope
        guard e.tensors.count == 1, e.tensors[0].name == "latents", e.tensors[0].dtype == .float32,
            e.tensors[0].shape == [patches, latentDim]
        else { throw HeadRequestError.tensors("decodeImage needs latents float32 [\(patches), \(latentDim)]") }
        let latents = Matrix(rows: patches, columns: latentDim, values: message.tensors[0].array())
        return DecodeRequest(requestID: e.requestID, job: e.jobID, latents: latents)
    }
}

/// Diffusion worker → coordinator: the decoded image (kind decodedImage, `requestID`, `jobID`; frame `png` u8).
public struct DecodedImage: Sendable, Equatable {
    public var requestID: UInt64
    public var job: UInt64
    public var png: [UInt8]

    public init(requestID: UInt64, job: UInt64, png: [UInt8]) {
        self.requestID = requestID
        self.job = job
        self.png = png
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: MessageKind.decodedImage.rawValue,
                jobID: job,
                tensors: [TensorDescriptor(name: "png", dtype: .uint8, shape: [png.count])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(bytes: png)]
        )
    }

    public static func parse(_ message: WireMessage) throws -> DecodedImage {
        let e = message.envelope
        guard e.tensors.count == 1, e.tensors[0].dtype == .uint8, e.tensors[0].shape.count == 1 else {
            throw HeadRequestError.tensors("a decoded image is one uint8 png tensor")
        }
        return DecodedImage(requestID: e.requestID, job: e.jobID, png: message.tensors[0].bytes)
    }
}

/// Coordinator → diffusion worker: encode an input picture (kind encodeImage, `requestID`, `jobID`; frame `png` u8);
/// answered by `EncodedImage`.
public struct EncodeRequest: Sendable, Equatable {
    public var requestID: UInt64
    public var job: UInt64
    public var png: [UInt8]

    public init(requestID: UInt64, job: UInt64, png: [UInt8]) {
        self.requestID = requestID
        self.job = job
        self.png = png
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: MessageKind.encodeImage.rawValue,
                jobID: job,
                tensors: [TensorDescriptor(name: "png", dtype: .uint8, shape: [png.count])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(bytes: png)]
        )
    }

    public static func parse(_ message: WireMessage) throws -> EncodeRequest {
        let e = message.envelope
        guard e.tensors.count == 1, e.tensors[0].name == "png", e.tensors[0].dtype == .uint8 else {
            throw HeadRequestError.tensors("encodeImage needs png uint8 [bytes]")
        }
        return EncodeRequest(requestID: e.requestID, job: e.jobID, png: message.tensors[0].bytes)
    }
}

/// Diffusion worker → coordinator: the picture's latents in raster order (kind encodedImage, `requestID`, `jobID`;
/// frame `latents` f32 [patches, latent]).
public struct EncodedImage: Sendable, Equatable {
    public var requestID: UInt64
    public var job: UInt64
    public var latents: Matrix

    public init(requestID: UInt64, job: UInt64, latents: Matrix) {
        self.requestID = requestID
        self.job = job
        self.latents = latents
    }

    public func message() throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: MessageKind.encodedImage.rawValue,
                jobID: job,
                tensors: [TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.rows, latents.columns])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(borrowing: latents.storage)]
        )
    }

    public static func parse(_ message: WireMessage, patches: Int, latentDim: Int) throws -> EncodedImage {
        let e = message.envelope
        guard e.tensors.count == 1, e.tensors[0].dtype == .float32, e.tensors[0].shape == [patches, latentDim] else {
            throw HeadRequestError.tensors("encoded latents need float32 [\(patches), \(latentDim)]")
        }
        let latents = Matrix(rows: patches, columns: latentDim, values: message.tensors[0].array())
        return EncodedImage(requestID: e.requestID, job: e.jobID, latents: latents)
    }
}
