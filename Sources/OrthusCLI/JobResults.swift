import ArgumentParser
import ClusterClient
import ClusterProtocol
import Foundation
import Runtime
import Transport
import Wire

/// Receives a job's messages from the coordinator and writes what `generate` would: streamed text on stdout,
/// `--image-out` and `--latents-out`, or an interleaved answer's folder. Shared by `submit` and `fetch`.
struct JobResults: Sendable {
    let imageOut: String?
    let outDir: String?
    let latentsOut: String?
    /// For the progress bar of image and interleaved jobs.
    let maxTokens: Int?

    /// Runs until the job finishes (exits 0) or fails (throws `ExitCode(1)` after printing the reason), following it
    /// across a coordinator that goes silent or restarts (`JobFollower`). Ctrl-C or SIGTERM cancels the job on the
    /// cluster rather than leaving it running there; without an answer within 2 s it exits anyway.
    func receive(_ stream: JobStream, from client: ClusterClient, reattach: Double) async throws {
        let progress = ProgressBar(unit: imageOut != nil ? "patches" : "tokens")
        let follower = JobFollower(client: client, reattach: .milliseconds(Int(reattach * 1000)))
        let signals = TerminationSignals.stream()
        let streamsText = outDir == nil && imageOut == nil
        let outcome: JobOutcome
        do {
            outcome = try await withThrowingTaskGroup(of: JobOutcome?.self) { group in
                group.addTask {
                    var iterator = signals.makeAsyncIterator()
                    guard await iterator.next() != nil else { return nil }
                    guard let id = follower.job else { Foundation.exit(130) }
                    do {
                        try follower.cancel()
                    } catch {
                        StandardStreams.err("could not ask the coordinator to cancel job \(id): \(error)\n")
                        Foundation.exit(130)
                    }
                    // The cancel's answer ends the stream, and this task with the group; a coordinator that does not
                    // answer keeps us 2 s at most.
                    try? await Task.sleep(for: .seconds(2))  // cancelled: the answer came
                    if Task.isCancelled { return nil }
                    StandardStreams.err("job \(id): the coordinator did not confirm the cancel; exiting\n")
                    Foundation.exit(130)
                }
                group.addTask {
                    try await follower.follow(stream) { event in
                        switch event {
                        case .notice(let text):
                            progress.finish()
                            StandardStreams.err(text + "\n")
                        case .message(let message):
                            show(message, progress: progress, streamsText: streamsText)
                        }
                    }
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let outcome = result { return outcome }
                }
                throw ClientError.closed(stream.endpoint)
            }
        } catch let error as ClientError {
            progress.finish()
            StandardStreams.err("error: \(error)\n")
            throw ExitCode(1)
        }
        progress.finish()
        try finish(outcome)
    }

    /// Streams text and draws progress as a job's messages come.
    private func show(_ message: ClientMessage, progress: ProgressBar, streamsText: Bool) {
        switch message {
        case .accepted(let id, _, let ahead):
            StandardStreams.err("job \(id) accepted" + (ahead > 0 ? ", queued behind \(ahead)" : "") + "\n")
        case .text(_, let piece, let done):
            if streamsText {
                StandardStreams.out(piece)
            } else {
                progress.update(done: done, total: max(done, maxTokens ?? done))
            }
        case .patches(_, _, let done, let total, _):
            progress.update(done: done, total: total)
        default:
            break
        }
    }

    private func finish(_ outcome: JobOutcome) throws {
        let outputs = RequestOutputs(prompt: outcome.prompt, latentsOut: latentsOut)
        let pieces = outcome.pieces
        if let imageOut {
            guard case .image(let png, _) = pieces.first(where: { if case .image = $0 { true } else { false } }) else {
                StandardStreams.err("error: the coordinator finished the job without an image\n")
                throw ExitCode(1)
            }
            try outputs.writeLatents(outcome.images)
            try Data(png).write(to: URL(fileURLWithPath: imageOut))
            StandardStreams.err("wrote \(imageOut)\n")
        } else if let outDir {
            try outputs.writeInterleaved(pieces, folder: outDir)
        } else {
            StandardStreams.out(outcome.rest + "\n")  // the rest of the text streamed above
        }
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
        let stream = try client.fetch(job: job, timeout: .milliseconds(Int(timeout * 1000)))
        try await JobResults(imageOut: imageOut, outDir: outDir, latentsOut: latentsOut, maxTokens: nil)
            .receive(stream, from: client, reattach: connection.reattachTimeout)
    }
}
