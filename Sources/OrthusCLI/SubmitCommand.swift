import ArgumentParser
import Coordinator
import Foundation
import Synchronization
import Tensor
import Transport
import Wire

/// `orthus submit`: sends a request to a cluster and writes the same outputs as `generate`.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Run a request on a cluster: the same modes, options and outputs as generate.",
        discussion:
            "Progress (tokens, patches, ETA) is drawn on stderr; on failure the coordinator's reason is printed."
    )

    @OptionGroup var connection: ClientConnection

    @OptionGroup var request: RequestOptions

    @Option(help: "Seconds to wait for the coordinator to accept the job.")
    var timeout: Double = 30

    func run() async throws {
        let client = try connection.open()
        client.send(try submission(), timeout: .milliseconds(Int(timeout * 1000)))
        let progress = ProgressBar(unit: request.imageOut != nil ? "patches" : "tokens")
        let job = AcceptedJob()
        // Ctrl-C or SIGTERM cancels the job on the cluster instead of leaving it running there.
        let cancelling = Task {
            for await _ in TerminationSignals.stream() {
                guard let id = job.id else { Foundation.exit(130) }
                client.pump.send(WireMessage(envelope: Envelope(kind: ClientKind.cancel.rawValue, jobID: id)))
            }
        }
        defer { cancelling.cancel() }
        var pieces: [RequestOutputs.Piece] = []
        var images: [[[Float]]] = []
        for await reply in client.replies() {
            let e = reply.envelope
            switch ClientKind(rawValue: e.kind) {
            case .accepted:
                job.id = e.jobID
                if e.total > 0 { StandardStreams.err("job \(e.jobID) queued behind \(e.total) job(s)\n") }
            case .text:
                if request.outDir == nil && request.imageOut == nil {
                    StandardStreams.out(e.text)
                } else {
                    progress.update(done: Int(e.step), total: max(Int(e.step), request.maxTokens ?? Int(e.step)))
                }
            case .patches:
                progress.update(done: Int(e.step), total: Int(e.total))
            case .piece:
                pieces.append(.text(e.text))
            case .image:
                let latents = Self.rows(reply)
                images.append(latents)
                pieces.append(.image(png: Data(reply.tensors[0].bytes), latents: latents))
            case .finished:
                progress.finish()
                try finish(text: e.text, pieces: pieces, images: images)
                return
            case .failure:
                progress.finish()
                StandardStreams.err("error: \(e.error)\n")
                throw ExitCode(1)
            default:
                continue
            }
        }
        progress.finish()
        StandardStreams.err(
            "error: \(client.timedOut ? client.noAnswer : "the connection to the coordinator closed")\n"
        )
        throw ExitCode(1)
    }

    private func finish(text: String, pieces: [RequestOutputs.Piece], images: [[[Float]]]) throws {
        let outputs = RequestOutputs(request: request)
        if let imageOut = request.imageOut {
            guard case .image(let png, _) = pieces.first(where: { if case .image = $0 { true } else { false } }) else {
                throw ClientError("the coordinator finished the job without an image")
            }
            try outputs.writeLatents(images)
            try png.write(to: URL(fileURLWithPath: imageOut))
            StandardStreams.err("wrote \(imageOut)\n")
        } else if let outDir = request.outDir {
            try outputs.writeInterleaved(pieces, folder: outDir)
        } else {
            StandardStreams.out(text + "\n")
        }
    }

    /// The job and its tensors: the picture for image-to-text, the noise when given.
    private func submission() throws -> WireMessage {
        let mode: JobMode =
            request.imageOut != nil
            ? .textToImage
            : request.image != nil
                ? .imageToText
                : request.interleaved ? .interleaved : .text
        let sampling = request.sampling
        let spec = JobSpec(
            mode: mode,
            prompt: request.prompt,
            maxTokens: request.maxTokens ?? 0,
            temperature: sampling.temperature,
            topK: sampling.topK,
            topP: sampling.topP,
            seed: request.seed,
            guidance: request.cfg ?? (request.interleaved ? 3 : 5),
            steps: request.steps
        )
        var tensors: [TensorDescriptor] = []
        var frames: [ZMQMessage] = []
        if let image = request.image {
            let png = try Data(contentsOf: URL(fileURLWithPath: image))
            tensors.append(TensorDescriptor(name: "image", dtype: .uint8, shape: [png.count]))
            frames.append(try ZMQMessage(bytes: png))
        }
        if let noiseIn = request.noiseIn {
            let (shape, values) = try NumpyFile.read(noiseIn)
            tensors.append(TensorDescriptor(name: "noise", dtype: .float32, shape: shape))
            frames.append(try ZMQMessage(borrowing: values))
        }
        return WireMessage(
            envelope: Envelope(kind: ClientKind.submit.rawValue, tensors: tensors, job: spec),
            tensors: frames
        )
    }

    /// The id the coordinator gave the job, shared with the signal handler.
    final class AcceptedJob: Sendable {
        private let value = Mutex<UInt64?>(nil)
        var id: UInt64? {
            get { value.withLock { $0 } }
            set { value.withLock { $0 = newValue } }
        }
    }

    /// An image message's latents, `[patch][latent]`.
    static func rows(_ message: WireMessage) -> [[Float]] {
        guard message.envelope.tensors.count == 2, message.envelope.tensors[1].shape.count == 2 else { return [] }
        let shape = message.envelope.tensors[1].shape
        let values: [Float] = message.tensors[1].array()
        return (0..<shape[0]).map { Array(values[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
    }
}
