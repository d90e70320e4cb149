import Generation
import Tensor
import Transport
import Wire

/// A micro-batch crossing a stage boundary, as a `WireMessage`:
/// envelope(kind forward, `microBatch`, `sequenceIDs` one per slice) and the frames
/// `positions` int32 [slices, 2] (start, rows), then either `tokens` int32 [rows] (−1 marks an image-latent row)
/// with `latents` f32 [latent rows, width], or `hidden` f32 [rows, hidden].
public struct StageBatch: Sendable {
    public var microBatch: UInt64
    public var slices: [SequenceSlice]
    public var input: StageBatchInput
    /// The token that admits it at the stage it goes to (issued by the coordinator with the route).
    public var routeToken: UInt64

    public init(microBatch: UInt64, slices: [SequenceSlice], input: StageBatchInput, routeToken: UInt64 = 0) {
        self.microBatch = microBatch
        self.slices = slices
        self.input = input
        self.routeToken = routeToken
    }

    public func message(kind: MessageKind = .forward) throws -> WireMessage {
        var positions: [Int32] = []
        for slice in slices { positions += [Int32(slice.start), Int32(slice.count)] }
        var tensors = [TensorDescriptor(name: "positions", dtype: .int32, shape: [slices.count, 2])]
        var frames = [try ZMQMessage(borrowing: positions)]
        switch input {
        case .inputs(let inputs):
            var tokens: [Int32] = []
            var latents: [Float] = []
            var width = 0
            for input in inputs {
                switch input {
                case .token(let id): tokens.append(Int32(id))
                case .latent(let values):
                    tokens.append(-1)
                    latents += values
                    width = values.count
                }
            }
            let latentRows = tokens.filter { $0 == -1 }.count
            tensors += [
                TensorDescriptor(name: "tokens", dtype: .int32, shape: [tokens.count]),
                TensorDescriptor(name: "latents", dtype: .float32, shape: [latentRows, width]),
            ]
            frames += [try ZMQMessage(borrowing: tokens), try ZMQMessage(borrowing: latents)]
        case .hidden(let hidden):
            tensors.append(TensorDescriptor(name: "hidden", dtype: .float32, shape: [hidden.rows, hidden.columns]))
            frames.append(try ZMQMessage(borrowing: hidden.storage))
        }
        return WireMessage(
            envelope: Envelope(
                kind: kind.rawValue,
                sequenceIDs: slices.map(\.sequenceID),
                tensors: tensors,
                microBatch: microBatch,
                routeToken: routeToken
            ),
            tensors: frames
        )
    }

    /// Reads a validated `WireMessage` back; refuses tensors that disagree with each other.
    public static func parse(_ message: WireMessage) throws -> StageBatch {
        let envelope = message.envelope
        func tensor(_ index: Int, _ name: String) throws -> TensorDescriptor {
            guard index < envelope.tensors.count, envelope.tensors[index].name == name else {
                throw StageMessageError.missingTensor(name)
            }
            return envelope.tensors[index]
        }
        let positionsDescriptor = try tensor(0, "positions")
        guard positionsDescriptor.dtype == .int32, positionsDescriptor.shape == [envelope.sequenceIDs.count, 2] else {
            throw StageMessageError.badTensor("positions", "needs int32 [\(envelope.sequenceIDs.count), 2]")
        }
        let positions: [Int32] = message.tensors[0].array()
        let slices = envelope.sequenceIDs.enumerated().map { i, id in
            SequenceSlice(sequenceID: id, start: Int(positions[2 * i]), count: Int(positions[2 * i + 1]))
        }
        guard slices.allSatisfy({ $0.start >= 0 && $0.count > 0 }) else {
            throw StageMessageError.badTensor("positions", "starts must be >= 0 and row counts > 0")
        }
        let rows = slices.reduce(0) { $0 + $1.count }
        if envelope.tensors.count == 2 {
            // A forward carries every row; the last stage's output only the last row of each slice.
            let hiddenRows = envelope.kind == MessageKind.output.rawValue ? slices.count : rows
            let descriptor = try tensor(1, "hidden")
            guard descriptor.dtype == .float32, descriptor.shape.count == 2, descriptor.shape[0] == hiddenRows else {
                throw StageMessageError.badTensor("hidden", "needs float32 [\(hiddenRows), hidden]")
            }
            let hidden = Matrix(rows: hiddenRows, columns: descriptor.shape[1], values: message.tensors[1].array())
            return StageBatch(
                microBatch: envelope.microBatch,
                slices: slices,
                input: .hidden(hidden),
                routeToken: envelope.routeToken
            )
        }
        let tokensDescriptor = try tensor(1, "tokens")
        let latentsDescriptor = try tensor(2, "latents")
        guard tokensDescriptor.dtype == .int32, tokensDescriptor.shape == [rows] else {
            throw StageMessageError.badTensor("tokens", "needs int32 [\(rows)]")
        }
        let tokens: [Int32] = message.tensors[1].array()
        let latentRows = tokens.filter { $0 == -1 }.count
        guard tokens.allSatisfy({ $0 >= -1 }) else {
            throw StageMessageError.badTensor("tokens", "ids must be >= 0 (−1: latent)")
        }
        guard latentsDescriptor.dtype == .float32, latentsDescriptor.shape.count == 2,
            latentsDescriptor.shape[0] == latentRows
        else { throw StageMessageError.badTensor("latents", "needs float32 [\(latentRows), width]") }
        let width = latentsDescriptor.shape[1]
        let latents: [Float] = message.tensors[2].array()
        var next = 0
        let inputs: [StageInput] = tokens.map { token in
            guard token == -1 else { return .token(Int(token)) }
            defer { next += 1 }
            return .latent(Array(latents[(next * width)..<((next + 1) * width)]))
        }
        return StageBatch(
            microBatch: envelope.microBatch,
            slices: slices,
            input: .inputs(inputs),
            routeToken: envelope.routeToken
        )
    }
}

/// Why a stage message could not be read.
public enum StageMessageError: Error, Equatable, CustomStringConvertible {
    case missingTensor(String)
    case badTensor(String, String)
    case unexpectedKind(UInt32)
    case notRouted

    public var description: String {
        switch self {
        case .missingTensor(let name): "the message lacks its '\(name)' tensor"
        case .badTensor(let name, let detail): "tensor '\(name)': \(detail)"
        case .unexpectedKind(let kind): "message kind \(kind) is not for a stage"
        case .notRouted:
            "this stage has no route for its output yet (the coordinator sends one when the pipeline forms)"
        }
    }
}

/// The stages' control messages, each with its named fields.
public enum StageControl: Sendable, Equatable {
    /// Coordinator → stage: send output to `next` (the next stage's inbound), or to the coordinator when it is nil;
    /// admit on the input only messages carrying the token `admits`, and stamp `stamps` on what goes to `next`. The
    /// tokens are fresh for every pipeline the coordinator forms, so only the routed upstream can feed a stage.
    case route(next: String?, admits: UInt64, stamps: UInt64)
    /// Stage → coordinator: the route is in place.
    case routed(next: String?)
    /// Drop the KV caches of these sequences (finished or cancelled ones); on the pipeline it carries the route
    /// token of the stage it goes to.
    case release(sequences: [UInt64], routeToken: UInt64 = 0)

    public var message: WireMessage {
        switch self {
        case .route(let next, let admits, let stamps):
            WireMessage(
                envelope: Envelope(
                    kind: MessageKind.route.rawValue,
                    endpoint: next ?? "",
                    routeToken: admits,
                    nextRouteToken: stamps
                )
            )
        case .routed(let next):
            WireMessage(envelope: Envelope(kind: MessageKind.routed.rawValue, endpoint: next ?? ""))
        case .release(let ids, let token):
            WireMessage(envelope: Envelope(kind: MessageKind.release.rawValue, sequenceIDs: ids, routeToken: token))
        }
    }

    /// Reads a control envelope; nil for another kind.
    public init?(_ e: Envelope) {
        switch e.messageKind {
        case .route:
            self = .route(next: e.endpoint.isEmpty ? nil : e.endpoint, admits: e.routeToken, stamps: e.nextRouteToken)
        case .routed: self = .routed(next: e.endpoint.isEmpty ? nil : e.endpoint)
        case .release: self = .release(sequences: e.sequenceIDs, routeToken: e.routeToken)
        default: return nil
        }
    }
}
