import Heads
import Tensor
import Transport
import Wire

extension HeadMessageKind {
    /// Coordinator → diffusion worker: sample these image patches.
    public static let samplePatches: UInt32 = 30
    /// Diffusion worker → coordinator: the latents of every patch of one request, in order.
    public static let sampledPatches: UInt32 = 31
    /// Coordinator → diffusion worker: decode `latents` f32 [patches, latent] to an image.
    public static let decodeImage: UInt32 = 32
    /// Diffusion worker → coordinator: the decoded image as `png` u8 [bytes].
    public static let decodedImage: UInt32 = 33
    /// Coordinator → diffusion worker: encode an input image, `png` u8 [bytes].
    public static let encodeImage: UInt32 = 34
    /// Diffusion worker → coordinator: its `latents` f32 [patches, latent] in raster order.
    public static let encodedImage: UInt32 = 35
}

/// Patches to sample, as a `WireMessage`: envelope(kind 30, step = request id, sequenceIDs = the cond sequence of
/// each patch) and frames `conditions` f32 [patches, 2, hidden] (final hidden states of the cond and uncond
/// sequences), `noise` f32 [patches, latent], `guidance` f32 [patches], `steps` int32 [patches].
public struct PatchRequest: Sendable {
    public struct Patch: Sendable, Equatable {
        public var sequenceID: UInt64
        public var condition: [Float]
        public var unconditional: [Float]
        public var noise: [Float]
        public var guidance: Float
        public var steps: Int

        public init(
            sequenceID: UInt64,
            condition: [Float],
            unconditional: [Float],
            noise: [Float],
            guidance: Float,
            steps: Int
        ) {
            self.sequenceID = sequenceID
            self.condition = condition
            self.unconditional = unconditional
            self.noise = noise
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
        let latent = patches.first?.noise.count ?? 0
        let conditions = patches.flatMap { $0.condition + $0.unconditional }
        let noise = patches.flatMap(\.noise)
        let guidance = patches.map(\.guidance)
        let steps = patches.map { Int32($0.steps) }
        return WireMessage(
            envelope: Envelope(
                kind: HeadMessageKind.samplePatches,
                sequenceIDs: patches.map(\.sequenceID),
                step: requestID,
                tensors: [
                    TensorDescriptor(name: "conditions", dtype: .float32, shape: [n, 2, hidden]),
                    TensorDescriptor(name: "noise", dtype: .float32, shape: [n, latent]),
                    TensorDescriptor(name: "guidance", dtype: .float32, shape: [n]),
                    TensorDescriptor(name: "steps", dtype: .int32, shape: [n]),
                ]
            ),
            tensors: [
                try ZMQMessage(borrowing: conditions), try ZMQMessage(borrowing: noise),
                try ZMQMessage(borrowing: guidance),
                try ZMQMessage(borrowing: steps),
            ]
        )
    }

    /// Reads a validated message back, checking shapes against the head's sizes.
    public static func parse(_ message: WireMessage, hiddenSize: Int, latentDim: Int) throws -> PatchRequest {
        let e = message.envelope
        let n = e.sequenceIDs.count
        let expected: [(String, WireDType, [Int])] = [
            ("conditions", .float32, [n, 2, hiddenSize]), ("noise", .float32, [n, latentDim]),
            ("guidance", .float32, [n]),
            ("steps", .int32, [n]),
        ]
        guard n > 0, e.tensors.count == expected.count else {
            throw HeadRequestError.tensors("a patch request needs \(expected.map(\.0)) for at least one patch")
        }
        for (descriptor, (name, dtype, shape)) in zip(e.tensors, expected) {
            guard descriptor.name == name, descriptor.dtype == dtype, descriptor.shape == shape else {
                throw HeadRequestError.tensors(
                    "'\(descriptor.name)' \(descriptor.dtype) \(descriptor.shape) is not \(name) \(dtype) \(shape)"
                )
            }
        }
        let conditions: [Float] = message.tensors[0].array()
        let noise: [Float] = message.tensors[1].array()
        let guidance: [Float] = message.tensors[2].array()
        let steps: [Int32] = message.tensors[3].array()
        let patches = try (0..<n).map { i -> Patch in
            guard (1...1000).contains(steps[i]) else {
                throw HeadRequestError.tensors("patch \(i): \(steps[i]) DDIM steps (1...1000)")
            }
            guard guidance[i].isFinite else { throw HeadRequestError.tensors("patch \(i): guidance is not finite") }
            let base = 2 * i * hiddenSize
            return Patch(
                sequenceID: e.sequenceIDs[i],
                condition: Array(conditions[base..<(base + hiddenSize)]),
                unconditional: Array(conditions[(base + hiddenSize)..<(base + 2 * hiddenSize)]),
                noise: Array(noise[(i * latentDim)..<((i + 1) * latentDim)]),
                guidance: guidance[i],
                steps: Int(steps[i])
            )
        }
        return PatchRequest(requestID: e.step, patches: patches)
    }
}
