import ArgumentParser
import ClusterProtocol
import Coordinator
import Foundation
import Synchronization
import Transport
import Wire

/// Receives a job's messages from the coordinator and writes what `generate` would: streamed text on stdout,
/// `--image-out` and `--latents-out`, or an interleaved answer's folder. Shared by `submit` and `fetch`.
struct JobResults {
    let imageOut: String?
    let outDir: String?
    let latentsOut: String?
    /// For the progress bar of image and interleaved jobs.
    let maxTokens: Int?

    /// Runs until the job finishes (exits 0) or fails (throws `ExitCode(1)` after printing the reason). Ctrl-C or
    /// SIGTERM cancels the job on the cluster rather than leaving it running there.
    func receive(from client: ClusterClient) async throws {
        let progress = ProgressBar(unit: imageOut != nil ? "patches" : "tokens")
        let job = AcceptedJob()
        let cancelling = Task {
            for await _ in TerminationSignals.stream() {
                guard let id = job.id else { Foundation.exit(130) }
                do {
                    try client.pump.send(WireMessage(envelope: Envelope(kind: MessageKind.cancel.rawValue, jobID: id)))
                } catch {
                    StandardStreams.err("could not ask the coordinator to cancel job \(id): \(error)\n")
                    Foundation.exit(130)
                }
            }
        }
        defer { cancelling.cancel() }
        let streamsText = outDir == nil && imageOut == nil
        let outcome: Outcome
        do {
            outcome = try await Self.collect(from: client, job: job) { kind, e in
                switch kind {
                case .accepted:
                    StandardStreams.err(
                        "job \(e.jobID) accepted" + (e.queuedAhead > 0 ? ", queued behind \(e.queuedAhead)" : "") + "\n"
                    )
                case .text where streamsText:
                    StandardStreams.out(e.answerText)
                case .text:
                    let done = Int(e.progressDone)
                    progress.update(done: done, total: max(done, maxTokens ?? done))
                case .patches:
                    progress.update(done: Int(e.progressDone), total: Int(e.progressTotal))
                default:
                    break
                }
            }
        } catch let error as ClientError {
            progress.finish()
            StandardStreams.err("error: \(error)\n")
            throw ExitCode(1)
        }
        progress.finish()
        try finish(text: outcome.rest, prompt: outcome.prompt, pieces: outcome.pieces, images: outcome.images)
    }

    /// What a finished job sent: the prompt as the coordinator read it, the streamed text, the interleaved pieces
    /// and the images (their latents).
    struct Outcome {
        var prompt = ""
        var streamed = ""
        /// The text of the `finished` message: the end of the streamed text.
        var rest = ""
        var pieces: [RequestOutputs.Piece] = []
        var images: [[[Float]]] = []
        /// The whole text answer.
        var text: String { streamed + rest }
    }

    /// Reads a job's messages until it finishes; `observe` sees each as it comes. Throws `ClientError` with the
    /// coordinator's reason when the job fails, or when the coordinator does not answer.
    static func collect(
        from client: ClusterClient,
        job: AcceptedJob = AcceptedJob(),
        observe: (MessageKind, Envelope) -> Void = { _, _ in }
    ) async throws -> Outcome {
        var outcome = Outcome()
        for await reply in client.replies() {
            let e = reply.envelope
            guard let kind = MessageKind(rawValue: e.kind) else { continue }
            observe(kind, e)
            switch kind {
            case .accepted:
                job.id = e.jobID
                outcome.prompt = e.prompt
            case .text:
                outcome.streamed += e.answerText
            case .piece:
                outcome.pieces.append(.text(e.answerText))
            case .image:
                let latents = Self.rows(reply)
                outcome.images.append(latents)
                outcome.pieces.append(.image(png: Data(reply.tensors[0].bytes), latents: latents))
            case .finished:
                outcome.rest = e.answerText
                return outcome
            case .failure:
                throw ClientError(e.error)
            default:
                continue
            }
        }
        throw ClientError(client.timedOut ? client.noAnswer : "the connection to the coordinator closed")
    }

    private func finish(text: String, prompt: String, pieces: [RequestOutputs.Piece], images: [[[Float]]]) throws {
        let outputs = RequestOutputs(prompt: prompt, latentsOut: latentsOut)
        if let imageOut {
            guard case .image(let png, _) = pieces.first(where: { if case .image = $0 { true } else { false } }) else {
                throw ClientError("the coordinator finished the job without an image")
            }
            try outputs.writeLatents(images)
            try png.write(to: URL(fileURLWithPath: imageOut))
            StandardStreams.err("wrote \(imageOut)\n")
        } else if let outDir {
            try outputs.writeInterleaved(pieces, folder: outDir)
        } else {
            StandardStreams.out(text + "\n")
        }
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

/// `orthus fetch`: the results of a job by id, from a coordinator with a journal (after a restart, or from another
/// terminal). A running job streams from where it is.
struct FetchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract:
            "Get a job's results by id: the same outputs as submit (needs --journal on the coordinator for ended jobs)."
    )

    @OptionGroup var connection: ClientConnection

    @Option(help: "The job id (submit prints it).")
    var job: UInt64

    @Option(help: "Write the job's image here (text-to-image jobs).")
    var imageOut: String?

    @Option(help: "Folder for an interleaved answer: image-N.png and index.html.")
    var outDir: String?

    @Option(help: "Write the job's latents, float32 .npy [images, patches, latent channels].")
    var latentsOut: String?

    @Option(help: "Seconds to wait for the coordinator's answer.")
    var timeout: Double = 30

    func run() async throws {
        let client = try connection.open()
        try client.send(
            WireMessage(envelope: Envelope(kind: MessageKind.fetch.rawValue, jobID: job)),
            timeout: .milliseconds(Int(timeout * 1000))
        )
        try await JobResults(imageOut: imageOut, outDir: outDir, latentsOut: latentsOut, maxTokens: nil)
            .receive(from: client)
    }
}
