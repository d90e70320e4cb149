/// The header of every cluster message (Protos/orthus/v1/envelope.proto), as a Swift value.
///
/// On the wire a message is this envelope, protobuf-encoded, followed by one raw frame per tensor descriptor, in
/// order. Tensor bytes never travel inside protobuf fields.
public struct Envelope: Sendable, Equatable {
    public static let currentVersion: UInt32 = 1

    public var version: UInt32
    public var kind: UInt32
    public var jobID: UInt64
    public var sequenceIDs: [UInt64]
    public var step: UInt64
    public var tensors: [TensorDescriptor]
    /// A human-readable reason, on error replies.
    public var error: String
    /// Membership messages: a worker's registration, the worker a message concerns, and its load.
    public var registration: Registration?
    public var workerID: UInt64
    public var load: UInt32
    /// Client messages: the submitted job, streamed text (or a status report), and progress totals.
    public var job: JobSpec?
    public var text: String
    public var total: UInt64
    /// Coordinator → stage: where the stage sends its output (empty: to the coordinator).
    public var endpoint: String

    public init(
        kind: UInt32,
        jobID: UInt64 = 0,
        sequenceIDs: [UInt64] = [],
        step: UInt64 = 0,
        tensors: [TensorDescriptor] = [],
        error: String = "",
        registration: Registration? = nil,
        workerID: UInt64 = 0,
        load: UInt32 = 0,
        job: JobSpec? = nil,
        text: String = "",
        total: UInt64 = 0,
        endpoint: String = "",
        version: UInt32 = Envelope.currentVersion
    ) {
        self.version = version
        self.kind = kind
        self.jobID = jobID
        self.sequenceIDs = sequenceIDs
        self.step = step
        self.tensors = tensors
        self.error = error
        self.registration = registration
        self.workerID = workerID
        self.load = load
        self.job = job
        self.text = text
        self.total = total
        self.endpoint = endpoint
    }
}

extension Envelope {
    /// The kind of a failure report, the same in every part of the protocol.
    public static let failureKind: UInt32 = 1

    /// A failure report about `envelope` (its job, sequences and step, when it could be read), with the reason.
    public static func failure(about envelope: Envelope?, error: any Error) -> Envelope {
        Envelope(
            kind: failureKind,
            jobID: envelope?.jobID ?? 0,
            sequenceIDs: envelope?.sequenceIDs ?? [],
            step: envelope?.step ?? 0,
            error: "\(error)"
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

    public init(
        key: String,
        incarnation: UInt64,
        role: WireRole,
        layers: Range<Int> = 0..<0,
        dataEndpoint: String = "",
        host: String = ""
    ) {
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
/// the model's context for interleaved answers).
public struct JobSpec: Sendable, Equatable {
    public var mode: JobMode
    public var prompt: String
    /// Text modes: tokens at most; interleaved: generated positions at most (patches included).
    public var maxTokens: Int
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var seed: UInt64
    /// Image modes: the classifier-free guidance scale and DDIM steps.
    public var guidance: Float
    public var steps: Int

    public init(
        mode: JobMode,
        prompt: String,
        maxTokens: Int,
        temperature: Float = 0,
        topK: Int = 0,
        topP: Float = 1,
        seed: UInt64 = 0,
        guidance: Float = 5,
        steps: Int = 100
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

    public var byteWidth: Int {
        switch self {
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
