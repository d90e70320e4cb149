import ClusterProtocol
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
    private let codec: PictureCodec?
    private let socket: SocketPump
    private let thread = SerialThread(name: "diffusion")
    private let inbox = Mutex<[PatchRequest]>([])
    private let rejectedCount = Atomic<Int>(0)
    private let stepsRun = Atomic<Int>(0)
    /// Every batched DDIM step, decode and encode, timed: the busy time and the spans heartbeats report.
    public let work = SpanLog()

    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }
    /// Head calls made so far (one per batched DDIM step).
    public var headCalls: Int { stepsRun.load(ordering: .relaxed) }
    /// Patch requests received and not yet answered (what heartbeats report as load).
    public var outstanding: Int { unanswered.load(ordering: .relaxed) }
    private let unanswered = Atomic<Int>(0)

    /// Pictures larger than this are refused from their header, before their pixels are allocated.
    private let maxPixels: Int

    public init(
        head: DiffusionHead,
        codec: PictureCodec? = nil,
        socket: SocketPump,
        maxPixels: Int = PNGCodec.defaultMaxPixels
    ) {
        self.maxPixels = maxPixels
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
        if kind == MessageKind.decodeImage.rawValue || kind == MessageKind.encodeImage.rawValue {
            try socket.send(try await convert(message))
            return
        }
        guard kind == MessageKind.samplePatches.rawValue else { throw HeadRequestError.unexpectedKind(kind) }
        let request = try PatchRequest.parse(message, hiddenSize: head.conditionDim, latentDim: head.latentDim)
        unanswered.add(1, ordering: .relaxed)
        inbox.withLock { $0.append(request) }
        wakeUp.yield()
    }

    /// Decodes latents to a PNG, or encodes a PNG to latents, on the compute thread (between DDIM steps).
    private func convert(_ message: WireMessage) async throws -> WireMessage {
        guard let codec else { throw HeadRequestError.tensors("this worker was started without the VQ-VAE") }
        if message.envelope.kind == MessageKind.decodeImage.rawValue {
            let request = try ImageLatents.parse(message, patches: codec.patchCount, latentDim: codec.latentDim)
            let png: [UInt8] = try await thread.run { [work] in
                try work.time(.decode, id: request.requestID, rows: 1) {
                    Array(try PNGCodec.encode(codec.decode(request.latents)))
                }
            }
            return try ImagePNG(.decodedImage, requestID: request.requestID, job: request.job, png: png).message()
        }
        let request = try ImagePNG.parse(message)
        let latents: Matrix = try await thread.run { [maxPixels, work] in
            try work.time(.encode, id: request.requestID, rows: 1) {
                try codec.encode(try PNGCodec.decode(Data(request.png), maxPixels: maxPixels))
            }
        }
        return try ImageLatents(.encodedImage, requestID: request.requestID, job: request.job, latents: latents)
            .message()
    }

    /// Samples every request received, all patches one DDIM step per head call, and answers each request once its
    /// last patch is done.
    private func sample(wake: AsyncStream<Void>) async {
        var batch = PatchBatch(head: head)
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
                let latentDim = head.latentDim
                batch.add(
                    id: request.requestID,
                    request.patches.map {
                        PatchBatch.Patch(
                            condition: $0.condition,
                            unconditional: $0.unconditional,
                            // The worker draws a patch's noise from its key unless the client gave some.
                            noise: $0.givenNoise
                                ?? PatchNoise.gaussian(
                                    seed: $0.key.seed,
                                    image: $0.key.image,
                                    patch: $0.key.patch,
                                    count: latentDim
                                ),
                            guidance: $0.guidance,
                            steps: $0.steps
                        )
                    }
                )
            }
            let current = batch
            let (advanced, finished): (PatchBatch, [(id: UInt64, latents: [[Float]])])
            let (step, work) = (UInt64(stepsRun.load(ordering: .relaxed) + 1), self.work)
            do {
                (advanced, finished) = try await thread.run {
                    var next = current
                    let done = work.time(.patchStep, id: step, rows: current.patchCount) { next.advance() }
                    return (next, done)
                }
            } catch {
                // The compute thread only refuses work once it is stopped: the worker is shutting down.
                return
            }
            batch = advanced
            stepsRun.add(1, ordering: .relaxed)
            for (id, latents) in finished {
                unanswered.subtract(1, ordering: .relaxed)
                do {
                    try socket.send(try PatchReply(requestID: id, latents: latents).message())
                } catch {
                    // The coordinator fails the request's jobs with this reason instead of waiting for it.
                    let about = Envelope(kind: MessageKind.samplePatches.rawValue, requestID: id)
                    socket.sendFailure(about: about, error: error)
                }
            }
        }
    }
}
