import ArgumentParser
import Checkpoint
import ClusterClient
import Engine
import Foundation
import Generation
import ImageIO
import Runtime
import Tensor
import Tokenizer

/// `orthus generate`: requests in this process — text, text-to-image, image-to-text or interleaved — through the same
/// scheduler the cluster's coordinator runs, with continuous batching when several run at once (`--prompts`).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text, an image (--image-out), an answer about an image (--image) or both (--interleaved).",
        discussion: """
            Text: the prompt is BOS + prompt + SEP; stops on SEP or EOS; image ids masked.
            --image-out: text-to-image with classifier-free guidance (default 5) and DDIM (default 100 steps).
            --image IN.png: the prompt is a question about the image (greedy unless --temperature is given).
            --interleaved --out-dir DIR: text and images (guidance 3, top-k 50 sampling); writes PNGs and index.html.
            --prompts FILE: one request per line, a JSON object with submit's options by their long names
            ({"prompt": "a red circle", "image_out": "c.png", "cfg": 1.5}); all run together, and each line's
            outcome is printed as a JSON line in the file's order.
            """
    )

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var request: RequestOptions

    @Option(help: "Run every request of this JSON-lines file together (see below).")
    var prompts: String?

    @Flag(help: "Print token counts and speeds to stderr.")
    var stats = false

    @Option(help: "Largest picture (--image) in pixels; a larger one is refused from its header before decoding.")
    var maxImagePixels = PNGCodec.defaultMaxPixels

    func run() throws {
        let loadStart = ContinuousClock.now
        let engine = try LocalEngine(directory: try ModelDirectory(path: modelOptions.model))
        if let prompts {
            try BatchGeneration(file: prompts, engine: engine, maxImagePixels: maxImagePixels).run()
            return
        }
        let job = try Self.job(request, engine: engine, maxImagePixels: maxImagePixels)
        if let limit = request.maxTokens, limit > engine.planner.contextLength {
            StandardStreams.err(
                "note: --max-tokens \(limit) is beyond the model's context of \(engine.planner.contextLength) "
                    + "positions (prompt included): the answer stops there\n"
            )
        }
        var detokenizer = StreamingDetokenizer(tokenizer: engine.tokenizer)
        let streamsText = job.request.mode == .text || job.request.mode == .imageToText
        let progress = ProgressBar(unit: "patches")
        let start = ContinuousClock.now
        var firstToken: ContinuousClock.Instant?
        let answer = try engine.run(job) { update in
            switch update {
            case .token(_, let token):
                if firstToken == nil { firstToken = .now }
                if streamsText { StandardStreams.out(try detokenizer.push(token)) }
            case .patch(_, let image, let done, let total):
                if job.request.mode == .interleaved {
                    progress.update(done: done, total: total, label: "image \(image + 1)")
                } else {
                    progress.update(done: done, total: total)
                }
            case .finished: break
            }
        }
        progress.finish()
        if streamsText { StandardStreams.out(detokenizer.finish() + "\n") }
        try Self.writeOutputs(answer, of: request, engine: engine, echo: true)
        if stats, streamsText {
            let end = ContinuousClock.now
            let decodeSeconds = firstToken.map { (end - $0).seconds } ?? 0
            StandardStreams.err(
                String(
                    format:
                        "load %.2fs, first token after %.3fs, %d tokens at %.1f tok/s (%@), peak resident %@\n",
                    (start - loadStart).seconds,
                    firstToken.map { ($0 - start).seconds } ?? 0,
                    answer.tokens.count,
                    decodeSeconds > 0 ? Double(answer.tokens.count - 1) / decodeSeconds : 0,
                    "\(answer.reason)",
                    // Without /proc (not Linux) the peak is not known, and says so rather than 0.
                    ProcessMemory.peakResidentBytes().map { String(format: "%.1f MiB", Double($0) / Double(1 << 20)) }
                        ?? "unknown"
                )
            )
        }
    }

    /// The engine's job for a request's options: the request, its picture and its noise.
    static func job(_ options: RequestOptions, engine: LocalEngine, maxImagePixels: Int) throws -> LocalEngine.Job {
        let picture = try options.image.map { try PNGCodec.read($0, maxPixels: maxImagePixels) }
        let noise = try options.noiseIn.map(readNoise)
        return LocalEngine.Job(try options.generationRequest(), picture: picture, noise: noise)
    }

    /// Writes what a finished request asked for: the PNG and latents of an image, or an interleaved answer's folder.
    /// Text was streamed as it came.
    static func writeOutputs(_ answer: JobAnswer, of options: RequestOptions, engine: LocalEngine, echo: Bool) throws {
        let outputs = RequestOutputs(prompt: options.prompt ?? "", latentsOut: options.latentsOut)
        if let imageOut = options.imageOut {
            let images = answer.pieces.compactMap { if case .image(let latents) = $0 { latents } else { nil } }
            guard let latents = images.first else { throw ValidationError("the job finished without an image") }
            try outputs.writeLatents([latents])
            try PNGCodec.write(try engine.decode(latents), to: imageOut)
            if echo { StandardStreams.err("wrote \(imageOut)\n") }
        } else if let outDir = options.outDir {
            let pieces = try answer.pieces.map { piece -> RequestOutputs.Piece in
                switch piece {
                case .text(let ids): .text(try engine.tokenizer.decode(ids))
                case .image(let latents):
                    .image(png: Array(try PNGCodec.encode(try engine.decode(latents))), latents: latents)
                }
            }
            try outputs.writeInterleaved(pieces, folder: outDir, echo: echo)
        }
    }

    /// Noise from a float32 `.npy` of shape [images, patches, latent]; the engine checks it against the job.
    static func readNoise(_ path: String) throws -> GivenNoise {
        let (shape, values) = try NumpyFile.read(path)
        do {
            return try GivenNoise(shape: shape, values: values)
        } catch {
            throw ValidationError("--noise-in \(path): \(error)")
        }
    }
}
