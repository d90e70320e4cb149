import Generation
import Tensor
import Transport
import Wire

/// Patches to sample, as a `WireMessage`: envelope(kind samplePatches, `requestID`, `patchKeys` one per patch) and
/// frames `conditions` f32 [patches, 2, hidden] (final hidden states of the cond and uncond sequences), `guidance` f32
/// [patches], `steps` int32 [patches], `noise_rows` int32 [patches] (−1: the worker draws the patch's noise from its
/// key; else a row of `noise`) and `noise` f32 [given, latent] (noise a client supplied).
public struct PatchRequest: Sendable, Equatable {
    public struct Patch: Sendable, Equatable {
        public var key: PatchKey
        public var condition: [Float]
        public var unconditional: [Float]
        /// The client's noise for this patch; nil: drawn from `key`.
        public var givenNoise: [Float]?
        public var guidance: Float
        public var steps: Int

        public init(
            key: PatchKey,
            condition: [Float],
            unconditional: [Float],
            givenNoise: [Float]? = nil,
            guidance: Float,
            steps: Int
        ) {
            self.key = key
            self.condition = condition
            self.unconditional = unconditional
            self.givenNoise = givenNoise
            self.guidance = guidance
            self.steps = steps
        }
    }

    public var requestID: UInt64
    public var patches: [Patch]

    public init(requestID: UInt64, patches: [Patch]) {
        self.requestID = requestID
        self.patches = patches
    }

    public func message() throws -> WireMessage {
        let n = patches.count
        let hidden = patches.first?.condition.count ?? 0
        var rows: [Int32] = []
        var given: [Float] = []
        var width = 0
        for patch in patches {
            guard let noise = patch.givenNoise else {
                rows.append(-1)
                continue
            }
            rows.append(Int32(given.count / max(noise.count, 1)))
            given += noise
            width = noise.count
        }
        let givenRows = rows.filter { $0 >= 0 }.count
        return WireMessage(
            envelope: Envelope(
                kind: MessageKind.samplePatches.rawValue,
                tensors: [
                    TensorDescriptor(name: "conditions", dtype: .float32, shape: [n, 2, hidden]),
                    TensorDescriptor(name: "guidance", dtype: .float32, shape: [n]),
                    TensorDescriptor(name: "steps", dtype: .int32, shape: [n]),
                    TensorDescriptor(name: "noise_rows", dtype: .int32, shape: [n]),
                    TensorDescriptor(name: "noise", dtype: .float32, shape: [givenRows, width]),
                ],
                requestID: requestID,
                patchKeys: patches.map {
                    WirePatchKey(seed: $0.key.seed, image: UInt32($0.key.image), patch: UInt32($0.key.patch))
                }
            ),
            tensors: [
                try ZMQMessage(borrowing: patches.flatMap { $0.condition + $0.unconditional }),
                try ZMQMessage(borrowing: patches.map(\.guidance)),
                try ZMQMessage(borrowing: patches.map { Int32($0.steps) }),
                try ZMQMessage(borrowing: rows),
                try ZMQMessage(borrowing: given),
            ]
        )
    }

    /// Reads a validated message back, checking shapes against the head's sizes.
    public static func parse(_ message: WireMessage, hiddenSize: Int, latentDim: Int) throws -> PatchRequest {
        let e = message.envelope
        let n = e.patchKeys.count
        let expected: [(String, WireDType, [Int]?)] = [
            ("conditions", .float32, [n, 2, hiddenSize]), ("guidance", .float32, [n]), ("steps", .int32, [n]),
            ("noise_rows", .int32, [n]), ("noise", .float32, nil),
        ]
        guard n > 0, e.tensors.count == expected.count else {
            throw HeadRequestError.tensors("a patch request needs \(expected.map(\.0)) and a key for each patch")
        }
        for (descriptor, (name, dtype, shape)) in zip(e.tensors, expected) {
            guard descriptor.name == name, descriptor.dtype == dtype, shape == nil || descriptor.shape == shape! else {
                throw HeadRequestError.tensors(
                    "'\(descriptor.name)' \(descriptor.dtype) \(descriptor.shape) is not \(name) \(dtype) \(shape.map { "\($0)" } ?? "")"
                )
            }
        }
        let given = e.tensors[4].shape
        guard given.count == 2, given[0] == 0 || given[1] == latentDim else {
            throw HeadRequestError.tensors("noise must be float32 [rows, \(latentDim)], not \(given)")
        }
        let conditions: [Float] = message.tensors[0].array()
        let guidance: [Float] = message.tensors[1].array()
        let steps: [Int32] = message.tensors[2].array()
        let rows: [Int32] = message.tensors[3].array()
        let noise: [Float] = message.tensors[4].array()
        let patches = try (0..<n).map { i -> Patch in
            guard (1...1000).contains(steps[i]) else {
                throw HeadRequestError.tensors("patch \(i): \(steps[i]) DDIM steps (1...1000)")
            }
            guard guidance[i].isFinite else { throw HeadRequestError.tensors("patch \(i): guidance is not finite") }
            guard rows[i] >= -1, Int(rows[i]) < given[0] else {
                throw HeadRequestError.tensors("patch \(i): noise row \(rows[i]) of \(given[0])")
            }
            let key = e.patchKeys[i]
            let base = 2 * i * hiddenSize
            let row = Int(rows[i])
            return Patch(
                key: PatchKey(seed: key.seed, image: Int(key.image), patch: Int(key.patch)),
                condition: Array(conditions[base..<(base + hiddenSize)]),
                unconditional: Array(conditions[(base + hiddenSize)..<(base + 2 * hiddenSize)]),
                givenNoise: row < 0 ? nil : Array(noise[(row * latentDim)..<((row + 1) * latentDim)]),
                guidance: guidance[i],
                steps: Int(steps[i])
            )
        }
        return PatchRequest(requestID: e.requestID, patches: patches)
    }
}

/// The latents of every patch of one request, in request order, in VQ-latent scale: envelope(kind sampledPatches,
/// `requestID`) and frame `latents` f32 [patches, latent].
public struct PatchReply: Sendable, Equatable {
    public var requestID: UInt64
    public var latents: [[Float]]

    public init(requestID: UInt64, latents: [[Float]]) {
        self.requestID = requestID
        self.latents = latents
    }

    public func message() throws -> WireMessage {
        let width = latents.first?.count ?? 0
        return WireMessage(
            envelope: Envelope(
                kind: MessageKind.sampledPatches.rawValue,
                tensors: [TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.count, width])],
                requestID: requestID
            ),
            tensors: [try ZMQMessage(borrowing: latents.flatMap { $0 })]
        )
    }

    /// Reads a reply that should hold `patches` latents of `latentDim` values.
    public static func parse(_ message: WireMessage, patches: Int, latentDim: Int) throws -> PatchReply {
        let e = message.envelope
        let shape = [patches, latentDim]
        guard e.tensors.count == 1, e.tensors[0].dtype == .float32, e.tensors[0].shape == shape else {
            throw HeadRequestError.tensors("sampled patches need one float32 \(shape) tensor")
        }
        let values: [Float] = message.tensors[0].array()
        return PatchReply(
            requestID: e.requestID,
            latents: (0..<patches).map { Array(values[($0 * latentDim)..<(($0 + 1) * latentDim)]) }
        )
    }
}
