import Foundation
import Heads
import ImageIO
import Membership
import Runtime
import Synchronization
import Tensor
import Transport
import VQVAE
import Wire

/// A diffusion-head pool worker: patch requests in, latents out, on one socket (a DEALER in the coordinator's pool).
///
/// Every active patch of every request advances one DDIM step per head call (`PatchBatch`), so patches of different
/// requests at different steps share the matrix products. Requests that arrive mid-way join at the next step. A
/// request is answered when its last patch is done. Row-invariant kernels make each latent independent of what it was
/// batched with.
public final class DiffusionWorker: Sendable {
    private let head: DiffusionHead
    /// The VQ-VAE, for decode and encode requests (the diffusion pool also decodes and encodes images).
    private let codec: VQCodec?
    private let socket: SocketPump
    private let thread = SerialThread(name: "diffusion")
    private let inbox = Mutex<[PatchRequest]>([])
    private let rejectedCount = Atomic<Int>(0)
    private let stepsRun = Atomic<Int>(0)

    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }
    /// Head calls made so far (one per batched DDIM step).
    public var headCalls: Int { stepsRun.load(ordering: .relaxed) }

    /// The VQ-VAE halves a diffusion worker serves.
    public struct VQCodec: Sendable {
        public var encoder: VQEncoder
        public var decoder: VQDecoder
        public init(encoder: VQEncoder, decoder: VQDecoder) {
            self.encoder = encoder
            self.decoder = decoder
        }
    }

    public init(head: DiffusionHead, codec: VQCodec? = nil, socket: SocketPump) {
        self.head = head
        self.codec = codec
        self.socket = socket
    }

    /// Receives and samples until the socket stops or the coordinator accepts this worker's drain; requests already
    /// received are finished first.
    public func run() async {
        let (wake, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.socket.servePool(rejected: { self.rejectedCount.add(1, ordering: .relaxed) }) {
                    try await self.accept($0, wakeUp: wakeUp)
                }
                wakeUp.finish()
            }
            group.addTask { await self.sample(wake: wake) }
        }
        thread.stop()
    }

    private func accept(_ message: WireMessage, wakeUp: AsyncStream<Void>.Continuation) async throws {
        let kind = message.envelope.kind
        if kind == HeadMessageKind.decodeImage || kind == HeadMessageKind.encodeImage {
            try socket.send(try await convert(message))
            return
        }
        guard kind == HeadMessageKind.samplePatches else { throw HeadRequestError.unexpectedKind(kind) }
        let request = try PatchRequest.parse(message, hiddenSize: head.conditionDim, latentDim: head.latentDim)
        inbox.withLock { $0.append(request) }
        wakeUp.yield()
    }

    /// Decodes latents to a PNG, or encodes a PNG to latents, on the compute thread (between DDIM steps).
    private func convert(_ message: WireMessage) async throws -> WireMessage {
        guard let codec else { throw HeadRequestError.tensors("this worker was started without the VQ-VAE") }
        let e = message.envelope
        let latentDim = head.latentDim
        guard e.tensors.count == 1 else { throw HeadRequestError.tensors("an image request carries one tensor") }
        if e.kind == HeadMessageKind.decodeImage {
            let patches = codec.decoder.patchCount
            guard e.tensors[0].name == "latents", e.tensors[0].dtype == .float32,
                e.tensors[0].shape == [patches, latentDim]
            else {
                throw HeadRequestError.tensors("decodeImage needs latents float32 [\(patches), \(latentDim)]")
            }
            let latents = Matrix(rows: patches, columns: latentDim, values: message.tensors[0].array())
            let png: [UInt8] = try await thread.run {
                let pixels = codec.decoder.decode(latents)
                return Array(try PNGCodec.encode(ChameleonImage.postprocess(pixels.values, resolution: pixels.height)))
            }
            return WireMessage(
                envelope: Envelope(
                    kind: HeadMessageKind.decodedImage,
                    jobID: e.jobID,
                    step: e.step,
                    tensors: [TensorDescriptor(name: "png", dtype: .uint8, shape: [png.count])]
                ),
                tensors: [try ZMQMessage(bytes: png)]
            )
        }
        guard e.tensors[0].name == "png", e.tensors[0].dtype == .uint8 else {
            throw HeadRequestError.tensors("encodeImage needs png uint8 [bytes]")
        }
        let bytes = Data(message.tensors[0].bytes)
        let latents: Matrix = try await thread.run {
            let picture = try PNGCodec.decode(bytes)
            let r = codec.encoder.resolution
            let pixels = try ChameleonImage.preprocess(picture, resolution: r)
            return codec.encoder.encode(FeatureMap(channels: 3, height: r, width: r, values: pixels))
        }
        return WireMessage(
            envelope: Envelope(
                kind: HeadMessageKind.encodedImage,
                jobID: e.jobID,
                step: e.step,
                tensors: [TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.rows, latents.columns])]
            ),
            tensors: [try ZMQMessage(borrowing: latents.storage)]
        )
    }

    /// Samples every request received, all patches one DDIM step per head call, and answers each request once its
    /// last patch is done.
    private func sample(wake: AsyncStream<Void>) async {
        var batch = PatchBatch(head: head)
        var sequenceIDs: [UInt64: [UInt64]] = [:]
        var wakes = wake.makeAsyncIterator()
        while true {
            let arrived = inbox.withLock { queued in
                defer { queued.removeAll() }
                return queued
            }
            if arrived.isEmpty && batch.isEmpty {
                guard await wakes.next() != nil else { return }
                continue
            }
            for request in arrived {
                sequenceIDs[request.requestID] = request.patches.map(\.sequenceID)
                batch.add(
                    id: request.requestID,
                    request.patches.map {
                        PatchBatch.Patch(
                            condition: $0.condition,
                            unconditional: $0.unconditional,
                            noise: $0.noise,
                            guidance: $0.guidance,
                            steps: $0.steps
                        )
                    }
                )
            }
            let current = batch
            let (advanced, finished): (PatchBatch, [(id: UInt64, latents: [[Float]])])
            do {
                (advanced, finished) = try await thread.run {
                    var next = current
                    let done = next.advance()
                    return (next, done)
                }
            } catch {
                // The compute thread only refuses work once it is stopped: the worker is shutting down.
                return
            }
            batch = advanced
            stepsRun.add(1, ordering: .relaxed)
            for (id, latents) in finished {
                let ids = sequenceIDs.removeValue(forKey: id) ?? []
                do {
                    try socket.send(
                        try Self.reply(request: id, sequenceIDs: ids, latents: latents, width: head.latentDim)
                    )
                } catch {
                    // The coordinator fails the request's jobs with this reason instead of waiting for it.
                    let about = Envelope(kind: HeadMessageKind.samplePatches, sequenceIDs: ids, step: id)
                    socket.sendFailure(about: about, error: error)
                }
            }
        }
    }

    static func reply(request: UInt64, sequenceIDs: [UInt64], latents: [[Float]], width: Int) throws -> WireMessage {
        WireMessage(
            envelope: Envelope(
                kind: HeadMessageKind.sampledPatches,
                sequenceIDs: sequenceIDs,
                step: request,
                tensors: [TensorDescriptor(name: "latents", dtype: .float32, shape: [latents.count, width])]
            ),
            tensors: [try ZMQMessage(borrowing: latents.flatMap { $0 })]
        )
    }
}
