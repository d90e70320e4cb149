import Transport
import Wire

/// The messages between a client and the coordinator's client socket, each with its named fields. A client submits a
/// job and then receives, in order: `accepted`, progress (`text`, `patches`), results (`answerText`, `image`) and
/// `finished`, or a `failure` with the reason at any point.
public enum ClientMessage: Sendable {
    /// Client → coordinator: a job, with the picture of an image-to-text job (PNG bytes) and noise
    /// `[images, patches, latent]` that replaces the seeded noise.
    case submit(JobSpec, picture: [UInt8]?, noise: NoiseTensor?)
    /// The job is accepted as `job`; `prompt` as the coordinator read it, `queuedAhead` jobs before it.
    case accepted(job: UInt64, prompt: String, queuedAhead: Int)
    /// Streamed text (text modes; empty for interleaved answers) and the tokens generated so far.
    case text(job: UInt64, piece: String, tokens: Int)
    /// Patch `done` of `total` of image `image` is sampled; `latent` is that patch's latent (empty when the sender has
    /// none to give, as in a job's replayed history), so a client can draw the picture as it fills in.
    case patches(job: UInt64, image: Int, done: Int, total: Int, latent: [Float])
    /// A finished image: its PNG and its latents `[patch][latent]`.
    case image(job: UInt64, index: Int, png: [UInt8], latents: [[Float]])
    /// One text run of an interleaved answer, in order with its images.
    case answerText(job: UInt64, text: String)
    /// The job is done; `rest` ends the streamed text.
    case finished(job: UInt64, rest: String)
    /// Client → coordinator: report members, jobs and queue.
    case status
    /// The status report, as JSON (`StatusReport`).
    case statusReport(json: String)
    /// Client → coordinator: stop `job` (answered with a failure naming the cancellation).
    case cancel(job: UInt64)
    /// Client → coordinator: the results of `job`, replayed from the journal when it has ended, else streamed.
    case fetch(job: UInt64)
    /// Client → coordinator: the trace records after cursor `since` (`UInt64.max`: only the current cursor).
    case trace(since: UInt64)
    /// The trace records, as JSON (`TraceReport`).
    case traceReport(json: String)
    /// A refusal, or the job failed; `job` is 0 when the message it answers could not be read.
    case failure(job: UInt64, reason: String)

    public var kind: MessageKind {
        switch self {
        case .submit: .submit
        case .accepted: .accepted
        case .text: .text
        case .patches: .patches
        case .image: .image
        case .answerText: .piece
        case .finished: .finished
        case .status: .status
        case .statusReport: .statusReport
        case .cancel: .cancel
        case .fetch: .fetch
        case .trace: .trace
        case .traceReport: .traceReport
        case .failure: .failure
        }
    }

    public func message() throws -> WireMessage {
        var e = Envelope(kind: kind.rawValue)
        var frames: [ZMQMessage] = []
        switch self {
        case .submit(let spec, let picture, let noise):
            e.job = spec
            if let picture {
                e.tensors.append(TensorDescriptor(name: "image", dtype: .uint8, shape: [picture.count]))
                frames.append(try ZMQMessage(bytes: picture))
            }
            if let noise {
                e.tensors.append(TensorDescriptor(name: "noise", dtype: .float32, shape: noise.shape))
                frames.append(noise.frame)
            }
        case .accepted(let job, let prompt, let queuedAhead):
            (e.jobID, e.prompt, e.queuedAhead) = (job, prompt, UInt32(clamping: queuedAhead))
        case .text(let job, let piece, let tokens):
            (e.jobID, e.answerText, e.progressDone) = (job, piece, UInt32(clamping: tokens))
        case .patches(let job, let image, let done, let total, let latent):
            e.jobID = job
            (e.imageIndex, e.progressDone, e.progressTotal) = (
                UInt32(clamping: image), UInt32(clamping: done), UInt32(clamping: total)
            )
            if !latent.isEmpty {
                e.tensors = [TensorDescriptor(name: "latent", dtype: .float32, shape: [latent.count])]
                frames = [try ZMQMessage(borrowing: latent)]
            }
        case .image(let job, let index, let png, let latents):
            (e.jobID, e.imageIndex) = (job, UInt32(clamping: index))
            e.tensors = [
                TensorDescriptor(name: "png", dtype: .uint8, shape: [png.count]),
                TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.count, latents.first?.count ?? 0]),
            ]
            frames = [try ZMQMessage(bytes: png), try ZMQMessage(borrowing: latents.flatMap { $0 })]
        case .answerText(let job, let text): (e.jobID, e.answerText) = (job, text)
        case .finished(let job, let rest): (e.jobID, e.answerText) = (job, rest)
        case .status: break
        case .statusReport(let json), .traceReport(let json): e.statusJSON = json
        case .trace(let since): e.requestID = since
        case .cancel(let job), .fetch(let job): e.jobID = job
        case .failure(let job, let reason): (e.jobID, e.error) = (job, reason)
        }
        return WireMessage(envelope: e, tensors: frames)
    }

    /// Reads a validated message; a client message whose fields or tensors do not fit its kind is refused by name.
    public init(_ message: WireMessage) throws(ClientMessageError) {
        let e = message.envelope
        switch e.messageKind {
        case .submit:
            guard let spec = e.job else { throw .malformed("a submit message carries no job") }
            var picture: [UInt8]?
            var noise: NoiseTensor?
            for (descriptor, frame) in zip(e.tensors, message.tensors) {
                switch (descriptor.name, descriptor.dtype) {
                case ("image", .uint8): picture = frame.bytes
                case ("noise", .float32) where descriptor.shape.count == 3:
                    noise = NoiseTensor(shape: descriptor.shape, frame: frame)
                default:
                    throw .malformed(
                        "a submit message carries 'image' uint8 and 'noise' float32, not '\(descriptor.name)' \(descriptor.dtype)"
                    )
                }
            }
            self = .submit(spec, picture: picture, noise: noise)
        case .accepted: self = .accepted(job: e.jobID, prompt: e.prompt, queuedAhead: Int(e.queuedAhead))
        case .text: self = .text(job: e.jobID, piece: e.answerText, tokens: Int(e.progressDone))
        case .patches:
            var latent: [Float] = []
            if let descriptor = e.tensors.first {
                guard e.tensors.count == 1, descriptor.name == "latent", descriptor.dtype == .float32,
                    descriptor.shape.count == 1
                else { throw .malformed("a patches message carries at most one 'latent' float32 [latent]") }
                latent = message.tensors[0].array()
            }
            self = .patches(
                job: e.jobID,
                image: Int(e.imageIndex),
                done: Int(e.progressDone),
                total: Int(e.progressTotal),
                latent: latent
            )
        case .image:
            guard e.tensors.count == 2, e.tensors[0].dtype == .uint8, e.tensors[1].dtype == .float32,
                e.tensors[1].shape.count == 2
            else { throw .malformed("an image message needs png uint8 and latents float32 [patches, latent]") }
            let (patches, width) = (e.tensors[1].shape[0], e.tensors[1].shape[1])
            let values: [Float] = message.tensors[1].array()
            let latents = (0..<patches).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
            self = .image(job: e.jobID, index: Int(e.imageIndex), png: message.tensors[0].bytes, latents: latents)
        case .piece: self = .answerText(job: e.jobID, text: e.answerText)
        case .finished: self = .finished(job: e.jobID, rest: e.answerText)
        case .status: self = .status
        case .statusReport: self = .statusReport(json: e.statusJSON)
        case .cancel: self = .cancel(job: e.jobID)
        case .fetch: self = .fetch(job: e.jobID)
        case .trace: self = .trace(since: e.requestID)
        case .traceReport: self = .traceReport(json: e.statusJSON)
        case .failure: self = .failure(job: e.jobID, reason: e.error)
        default: throw .notAClientMessage(e.kind)
        }
    }
}

/// Why a message on the client socket could not be read.
public enum ClientMessageError: Error, Equatable, CustomStringConvertible {
    case notAClientMessage(UInt32)
    case malformed(String)

    public var description: String {
        switch self {
        case .notAClientMessage(let kind): "message kind \(kind) is not a client message"
        case .malformed(let detail): detail
        }
    }
}

/// Initial DDIM noise a client supplies, float32 [images, patches, latent], kept in its received frame: its shape is
/// checked against what the job can use before its values are read.
public struct NoiseTensor: Sendable {
    public let shape: [Int]
    let frame: ZMQMessage

    init(shape: [Int], frame: ZMQMessage) {
        self.shape = shape
        self.frame = frame
    }

    /// Noise from values laid out [images, patches, latent].
    public init(shape: [Int], values: [Float]) throws {
        precondition(
            shape.count == 3 && shape.reduce(1, *) == values.count,
            "noise \(shape) for \(values.count) values"
        )
        self.init(shape: shape, frame: try ZMQMessage(borrowing: values))
    }

    /// The values, read out of the frame.
    public var values: [Float] { frame.array() }
}
