import Wire

/// Every kind of cluster message, in one place. A message is an `Envelope` of this kind followed by its tensor frames;
/// each kind uses the envelope fields named here (every field means one thing whatever the kind).
public enum MessageKind: UInt32, Sendable, CaseIterable {
    /// Any direction: a refusal or failure, with `error`; it names the `jobID`, `microBatch` or `requestID` it is
    /// about when the message it answers could be read.
    case failure = 1

    // MARK: Stages (coordinator → first stage → … → last stage → coordinator)

    /// A micro-batch for the next stage (`StageBatch`): `microBatch`, `sequenceIDs` (one per slice).
    case forward = 10
    /// From the last stage: the final-normed last row of each slice (`StageBatch`).
    case output = 11
    /// Drop the KV caches of `sequenceIDs`.
    case release = 12
    /// Coordinator → stage: send output to `endpoint` (the next stage), or to the coordinator when it is empty.
    case route = 13
    /// Stage → coordinator: the route is in place (`endpoint` echoes it).
    case routed = 14

    // MARK: Head pools (coordinator ⇄ workers' data sockets)

    /// Choose the next token of each row (`TokenRequest`): `requestID`, `sequenceIDs` (one per row).
    case sampleTokens = 20
    /// The chosen tokens, in row order (`TokenReply`): `requestID`.
    case sampledTokens = 21
    /// Sample these image patches (`PatchRequest`): `requestID`, `patchKeys` (one per patch).
    case samplePatches = 30
    /// The latents of every patch of one request, in order (`PatchReply`): `requestID`.
    case sampledPatches = 31
    /// Decode one image's latents to a PNG (`ImageLatents`): `requestID`, `jobID`.
    case decodeImage = 32
    /// The decoded PNG (`ImagePNG`): `requestID`, `jobID`.
    case decodedImage = 33
    /// Encode an input picture to latents (`ImagePNG`): `requestID`, `jobID`.
    case encodeImage = 34
    /// The picture's latents in raster order (`ImageLatents`): `requestID`, `jobID`.
    case encodedImage = 35

    // MARK: Membership (workers' control and data sockets → coordinator, and its answers)

    /// Worker → coordinator: `registration`.
    case register = 40
    /// Coordinator → worker: accepted as `workerID`.
    case registered = 41
    /// Worker → coordinator: alive, with `workerID`, `outstanding` and `busyMicroseconds`.
    case heartbeat = 42
    /// Worker → coordinator: stopping (SIGTERM); send no new work.
    case drain = 43
    /// Worker → coordinator: drained and gone.
    case left = 44
    /// Coordinator → worker: refused, with the reason in `error` and the `workerID` it named.
    case refused = 45
    /// Worker → coordinator, on the data socket: this socket belongs to `workerID` (a ROUTER can address a peer only
    /// after hearing from it).
    case hello = 46
    /// Coordinator → worker, after a drain, twice: on the control link at once (the drain was heard; a worker that
    /// gets no such answer takes the coordinator for gone), and on the data socket after the last request sent there
    /// (nothing more will come, so once what arrived before is done the worker may leave).
    case drainAccepted = 47

    // MARK: Clients (a client's DEALER ⇄ the coordinator's client ROUTER)

    /// Client → coordinator: `job`, with tensor frames `image` u8 [bytes] (image to text, a PNG) and optionally
    /// `noise` f32 [images, patches, latent] (replaces the seeded DDIM noise).
    case submit = 50
    /// The job is accepted as `jobID`; `prompt` repeats its prompt, `queuedAhead` counts the jobs ahead of it.
    case accepted = 51
    /// Streamed text: `answerText` is the next decoded piece, `progressDone` the tokens generated so far.
    case text = 52
    /// Image progress: `progressDone` patches of `progressTotal` of image `imageIndex`.
    case patches = 53
    /// A finished image `imageIndex`: frames `png` u8 [bytes] and `latents` f32 [patches, latent].
    case image = 54
    /// The job is done; `answerText` is the last piece of streamed text (text modes).
    case finished = 55
    /// Interleaved answers: one text run in `answerText`, in order with the `image` messages.
    case piece = 56
    /// Client → coordinator: report members, jobs and queue.
    case status = 57
    /// The status report as JSON in `statusJSON`.
    case statusReport = 58
    /// Client → coordinator: stop job `jobID`; answered with a failure naming the cancellation.
    case cancel = 59
    /// Client → coordinator: the results of job `jobID`: replayed from the journal when it has ended, or streamed from
    /// now on (with the text so far) when it is still running.
    case fetch = 60
    /// Client → coordinator: the pipeline's trace records after cursor `requestID` (`UInt64.max`: none, only the
    /// cursor).
    case trace = 61
    /// The trace records as JSON (`TraceReport`) in `statusJSON`.
    case traceReport = 62

    /// Kinds a worker registers, heartbeats and leaves with.
    public static let membership: ClosedRange<UInt32> =
        MessageKind.register.rawValue...MessageKind.drainAccepted.rawValue
}

extension Envelope {
    /// An envelope of `kind`.
    public init(_ kind: MessageKind) { self.init(kind: kind.rawValue) }

    /// The kind, when it is one this protocol knows.
    public var messageKind: MessageKind? { MessageKind(rawValue: kind) }
}
