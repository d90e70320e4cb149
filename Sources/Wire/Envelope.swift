/// The header of every cluster message (Protos/orthus/v1/envelope.proto), as a Swift value.
///
/// On the wire a message is this envelope, protobuf-encoded, followed by one raw frame per tensor descriptor, in
/// order. Tensor bytes never travel inside protobuf fields.
public struct Envelope: Sendable, Equatable {
    public static let currentVersion: UInt32 = 4

    public var version: UInt32
    public var kind: UInt32
    /// The job a message concerns.
    public var jobID: UInt64
    /// The sequences of a micro-batch's slices, of a token request's rows, or whose caches to release.
    public var sequenceIDs: [UInt64]
    public var tensors: [TensorDescriptor]
    /// A human-readable reason, on failure reports and refusals.
    public var error: String
    /// Membership: a worker's registration, and the worker a message concerns.
    public var registration: Registration?
    public var workerID: UInt64
    /// Client → coordinator: the submitted job.
    public var job: JobSpec?
    /// Coordinator → stage: where the stage sends its output (empty: to the coordinator).
    public var endpoint: String
    /// Stage messages: the micro-batch.
    public var microBatch: UInt64
    /// Head-pool messages: the request, and the reply that answers it.
    public var requestID: UInt64
    /// Heartbeats: the requests the worker holds, and its compute time so far.
    public var outstanding: UInt32
    public var busyMicroseconds: UInt64
    /// Coordinator → client: text of the answer (a streamed piece, the rest at the end, or a text run).
    public var answerText: String
    /// Coordinator → client: the accepted job's prompt, and how many jobs were queued ahead of it.
    public var prompt: String
    public var queuedAhead: UInt32
    /// Coordinator → client: the status report as JSON.
    public var statusJSON: String
    /// Coordinator → client: which image of the answer, and progress (tokens so far; patches done of total).
    public var imageIndex: UInt32
    public var progressDone: UInt32
    public var progressTotal: UInt32
    /// Coordinator → diffusion worker: the noise key of each patch, (seed, image, patch).
    public var patchKeys: [WirePatchKey]
    /// Stage messages: the token that admits this message at the stage it goes to. In a route: the token the stage
    /// admits on its input, and `nextRouteToken` the one it stamps on its output.
    public var routeToken: UInt64
    public var nextRouteToken: UInt64
    /// Heartbeats: stage inputs the worker refused so far.
    public var refusedInputs: UInt64
    /// Heartbeats of a stage: the KV positions it holds, and its budget.
    public var kvPositions: UInt64
    public var kvBudget: UInt64

    public init(
        kind: UInt32,
        jobID: UInt64 = 0,
        sequenceIDs: [UInt64] = [],
        tensors: [TensorDescriptor] = [],
        error: String = "",
        registration: Registration? = nil,
        workerID: UInt64 = 0,
        job: JobSpec? = nil,
        endpoint: String = "",
        microBatch: UInt64 = 0,
        requestID: UInt64 = 0,
        outstanding: UInt32 = 0,
        busyMicroseconds: UInt64 = 0,
        answerText: String = "",
        prompt: String = "",
        queuedAhead: UInt32 = 0,
        statusJSON: String = "",
        imageIndex: UInt32 = 0,
        progressDone: UInt32 = 0,
        progressTotal: UInt32 = 0,
        patchKeys: [WirePatchKey] = [],
        routeToken: UInt64 = 0,
        nextRouteToken: UInt64 = 0,
        refusedInputs: UInt64 = 0,
        kvPositions: UInt64 = 0,
        kvBudget: UInt64 = 0,
        version: UInt32 = Envelope.currentVersion
    ) {
        self.version = version
        self.kind = kind
        self.jobID = jobID
        self.sequenceIDs = sequenceIDs
        self.tensors = tensors
        self.error = error
        self.registration = registration
        self.workerID = workerID
        self.job = job
        self.endpoint = endpoint
        self.microBatch = microBatch
        self.requestID = requestID
        self.outstanding = outstanding
        self.busyMicroseconds = busyMicroseconds
        self.answerText = answerText
        self.prompt = prompt
        self.queuedAhead = queuedAhead
        self.statusJSON = statusJSON
        self.imageIndex = imageIndex
        self.progressDone = progressDone
        self.progressTotal = progressTotal
        self.patchKeys = patchKeys
        self.routeToken = routeToken
        self.nextRouteToken = nextRouteToken
        self.refusedInputs = refusedInputs
        self.kvPositions = kvPositions
        self.kvBudget = kvBudget
    }
}

/// The noise key of one image patch on the wire.
public struct WirePatchKey: Sendable, Equatable {
    public var seed: UInt64
    public var image: UInt32
    public var patch: UInt32

    public init(seed: UInt64, image: UInt32, patch: UInt32) {
        self.seed = seed
        self.image = image
        self.patch = patch
    }
}

extension Envelope {
    /// The kind of a failure report, the same in every part of the protocol.
    public static let failureKind: UInt32 = 1

    /// A failure report about `envelope` (its job, sequences, micro-batch and request, when it could be read), with
    /// the reason.
    public static func failure(about envelope: Envelope?, error: any Error) -> Envelope {
        Envelope(
            kind: failureKind,
            jobID: envelope?.jobID ?? 0,
            sequenceIDs: envelope?.sequenceIDs ?? [],
            error: "\(error)",
            microBatch: envelope?.microBatch ?? 0,
            requestID: envelope?.requestID ?? 0
        )
    }
}

/// What a worker does in the cluster (the wire's `Role`).
public enum WireRole: UInt32, Sendable, Equatable {
    case stage = 1
    case lmHead = 2
    case diffusionHead = 3
}

/// A worker's registration with the coordinator.
public struct Registration: Sendable, Equatable {
    /// Stable across restarts of the same worker slot.
    public var key: String
    /// Bumped on every restart; a newer incarnation replaces the old member.
    public var incarnation: UInt64
    public var role: WireRole
    /// Stages: the layer range.
    public var layers: Range<Int>
    /// Stages: where the worker receives micro-batches.
    public var dataEndpoint: String
    public var host: String
    /// Random per worker process and part of its sockets' routing ids; sent only over its authenticated control link,
    /// so no other peer can guess the routing ids and take over the worker's connections.
    public var linkSecret: UInt64

    public init(
        key: String,
        incarnation: UInt64,
        role: WireRole,
        layers: Range<Int> = 0..<0,
        dataEndpoint: String = "",
        host: String = "",
        linkSecret: UInt64 = 0
    ) {
        self.linkSecret = linkSecret
        self.key = key
        self.incarnation = incarnation
        self.role = role
        self.layers = layers
        self.dataEndpoint = dataEndpoint
        self.host = host
    }
}

/// What a client asks for (the wire's `JobMode`).
public enum JobMode: UInt32, Sendable, Equatable, CaseIterable {
    case text = 1
    case textToImage = 2
    /// The image travels as a tensor frame named "image" (PNG bytes).
    case imageToText = 3
    case interleaved = 4
}

/// A job as a client submits it; every value explicit except `maxTokens` 0, the mode's default (256 tokens for text,
/// the model's context for interleaved answers), and `guidance` nil, the model's own (on the wire: `model_guidance`).
public struct JobSpec: Sendable, Equatable {
    public var mode: JobMode
    public var prompt: String
    /// Text modes: tokens at most; interleaved: generated positions at most (patches included).
    public var maxTokens: Int
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var seed: UInt64
    /// Image modes: the classifier-free guidance scale (nil: the model's default) and DDIM steps.
    public var guidance: Float?
    public var steps: Int
    /// The client's id for this submission (0: none); the same id from the same key again is the same job.
    public var submission: UInt64

    public init(
        mode: JobMode,
        prompt: String,
        maxTokens: Int,
        temperature: Float = 0,
        topK: Int = 0,
        topP: Float = 1,
        seed: UInt64 = 0,
        guidance: Float? = nil,
        steps: Int = 100,
        submission: UInt64 = 0
    ) {
        self.mode = mode
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.guidance = guidance
        self.steps = steps
        self.submission = submission
    }
}

/// Element types a tensor frame may carry (little-endian).
public enum WireDType: UInt32, Sendable, Equatable, CaseIterable {
    case float32 = 1
    case bfloat16 = 2
    case float16 = 3
    case int32 = 4
    /// Bytes: encoded files such as PNG.
    case uint8 = 5
    /// Ids and microsecond times (a heartbeat's work spans).
    case uint64 = 6

    public var byteWidth: Int {
        switch self {
        case .uint64: 8
        case .float32, .int32: 4
        case .bfloat16, .float16: 2
        case .uint8: 1
        }
    }
}

/// Describes one raw tensor frame that follows the envelope.
public struct TensorDescriptor: Sendable, Equatable {
    public var name: String
    public var dtype: WireDType
    public var shape: [Int]

    public init(name: String, dtype: WireDType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// Bytes the frame must hold, or nil when the shape's size overflows.
    public var byteCount: Int? {
        shape.reduce(dtype.byteWidth as Int?) { product, dimension in
            guard let product, dimension >= 0 else { return nil }
            let (value, overflow) = product.multipliedReportingOverflow(by: dimension)
            return overflow ? nil : value
        }
    }
}

/// Why a received message was refused. Every case names what is wrong; none is fatal to the receiver.
public enum WireError: Error, CustomStringConvertible, Equatable {
    case malformedEnvelope
    case unsupportedVersion(UInt32)
    case unknownDType(tensor: String, raw: UInt32)
    case frameCount(expected: Int, found: Int)
    case tensorSize(tensor: String, expected: Int, found: Int)
    case shapeTooLarge(tensor: String, shape: [Int])
    case badRegistration(String)
    case badJob(String)

    public var description: String {
        switch self {
        case .malformedEnvelope: "the envelope frame is not a valid orthus.v1.Envelope"
        case .unsupportedVersion(let version):
            "protocol version \(version) is not supported (this build speaks \(Envelope.currentVersion))"
        case .unknownDType(let tensor, let raw): "tensor '\(tensor)' has unknown dtype \(raw)"
        case .frameCount(let expected, let found):
            "the envelope describes \(expected) tensor frame(s); \(found) arrived"
        case .tensorSize(let tensor, let expected, let found):
            "tensor '\(tensor)' frame has \(found) bytes; its dtype and shape need \(expected)"
        case .shapeTooLarge(let tensor, let shape): "tensor '\(tensor)' has an impossible shape \(shape)"
        case .badRegistration(let detail): "bad registration: \(detail)"
        case .badJob(let detail): "bad job: \(detail)"
        }
    }
}
