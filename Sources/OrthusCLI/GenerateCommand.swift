import ArgumentParser
import Checkpoint
import Engine
import Foundation
import Heads
import Tensor
import Tokenizer

/// `orthus generate`: one request in one process — text, text-to-image, image-to-text or interleaved.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text, an image (--image-out), an answer about an image (--image) or both (--interleaved).",
        discussion: """
            Text: the prompt is BOS + prompt + SEP; stops on SEP or EOS; image ids masked.
            --image-out: text-to-image with classifier-free guidance (default 5) and DDIM (default 100 steps).
            --image IN.png: the prompt is a question about the image (greedy unless --temperature is given).
            --interleaved --out-dir DIR: text and images (guidance 3, top-k 50 sampling); writes PNGs and index.html.
            """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The prompt text (the question with --image).")
    var prompt: String

    @Option(help: "Most tokens to generate (interleaved: generated positions, image patches included).")
    var maxTokens: Int?

    @Option(help: "Seed of the sampling and of the image noise.")
    var seed: UInt64 = 0

    @Option(help: "Sampling temperature; 0 is greedy (default 0; 1 with --interleaved).")
    var temperature: Float?

    @Option(help: "Keep the k most likely tokens when sampling; 0 keeps all (default 0; 50 with --interleaved).")
    var topK: Int?

    @Option(help: "Nucleus sampling threshold in (0, 1]; 1 keeps all.")
    var topP: Float = 1

    @Option(help: "Write a generated image to this PNG (text-to-image).")
    var imageOut: String?

    @Option(help: "Ask the prompt about this PNG image (image-to-text).")
    var image: String?

    @Flag(help: "Interleaved text and images; needs --out-dir.")
    var interleaved = false

    @Option(help: "Folder for the interleaved answer: image-N.png and index.html.")
    var outDir: String?

    @Option(help: "Classifier-free guidance scale (default 5; 3 with --interleaved).")
    var cfg: Float?

    @Option(help: "DDIM steps per image patch.")
    var steps: Int = 100

    @Option(help: "Initial DDIM noise, float32 .npy [images, patches, latent channels] (replaces the seeded noise).")
    var noiseIn: String?

    @Option(help: "Write the generated latents before decoding, float32 .npy [images, patches, latent channels].")
    var latentsOut: String?

    @Flag(help: "Print token counts and speeds to stderr.")
    var stats = false

    func validate() throws {
        let modes = [imageOut != nil, image != nil, interleaved].filter { $0 }.count
        guard modes <= 1 else { throw ValidationError("--image-out, --image and --interleaved are separate modes") }
        if interleaved, outDir == nil { throw ValidationError("--interleaved needs --out-dir") }
        if outDir != nil, !interleaved { throw ValidationError("--out-dir is for --interleaved") }
        if (noiseIn != nil || latentsOut != nil), imageOut == nil, !interleaved {
            throw ValidationError("--noise-in and --latents-out apply to --image-out and --interleaved")
        }
        if let maxTokens, maxTokens <= 0 { throw ValidationError("--max-tokens must be positive") }
        if let temperature, !(temperature >= 0 && temperature.isFinite) {
            throw ValidationError("--temperature must be >= 0")
        }
        if let topK, topK < 0 { throw ValidationError("--top-k must be >= 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000") }
        if let cfg, !cfg.isFinite { throw ValidationError("--cfg must be a number") }
    }

    var sampling: SamplingParameters {
        let defaultTemperature: Float = interleaved ? 1 : 0
        let defaultTopK = interleaved ? 50 : 0
        return SamplingParameters(temperature: temperature ?? defaultTemperature, topK: topK ?? defaultTopK, topP: topP)
    }

    func run() throws {
        let directory = try ModelDirectory(path: modelOptions.model)
        let tokenizer = try Tokenizer(path: directory.tokenizerPath)
        if imageOut != nil || image != nil || interleaved {
            try runImageMode(directory: directory, tokenizer: tokenizer)
        } else {
            try runText(directory: directory, tokenizer: tokenizer)
        }
    }

    func runText(directory: ModelDirectory, tokenizer: Tokenizer) throws {
        let loadStart = ContinuousClock.now
        let model = try TextModel(directory: directory)
        let special = SpecialTokens.resolve(directory.configuration, tokenizer)
        let ids = try TextModel.promptIDs(prompt, tokenizer: tokenizer, special: special)
        let options = GenerationOptions(
            maxTokens: maxTokens ?? 256,
            sampling: sampling,
            seed: seed,
            mask: model.textOnlyMask(special, tokenizer: tokenizer),
            stopIDs: [special.sep, special.eos]
        )
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        let start = ContinuousClock.now
        var firstToken: ContinuousClock.Instant?
        let result = try model.generate(prompt: ids, options: options) { token in
            if firstToken == nil { firstToken = .now }
            StandardStreams.out(try detokenizer.push(token))
        }
        StandardStreams.out(detokenizer.finish() + "\n")
        if stats {
            let end = ContinuousClock.now
            let decodeSeconds = firstToken.map { (end - $0).seconds } ?? 0
            StandardStreams.err(
                String(
                    format: "load %.2fs, prompt %d tokens, first token after %.3fs, %d tokens at %.1f tok/s (%@)\n",
                    (start - loadStart).seconds,
                    ids.count,
                    firstToken.map { ($0 - start).seconds } ?? 0,
                    result.tokens.count,
                    decodeSeconds > 0 ? Double(result.tokens.count - 1) / decodeSeconds : 0,
                    "\(result.reason)"
                )
            )
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
