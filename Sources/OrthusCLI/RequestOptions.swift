import ArgumentParser
import Foundation
import Generation

/// What to generate: the prompt, the mode and its sampling options. `generate` runs it in this process; `submit`
/// sends the same request to a cluster, and both write the same outputs.
struct RequestOptions: ParsableArguments {
    @Option(help: "The prompt text (the question with --image).")
    var prompt: String?

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

    @Option(
        help: """
            Classifier-free guidance scale (default: the model's generation_config.json, else 5; 3 with --interleaved).
            """
    )
    var cfg: Float?

    @Option(help: "DDIM steps per image patch.")
    var steps: Int = 100

    @Option(help: "Initial DDIM noise, float32 .npy [images, patches, latent channels] (replaces the seeded noise).")
    var noiseIn: String?

    @Option(help: "Write the generated latents before decoding, float32 .npy [images, patches, latent channels].")
    var latentsOut: String?

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
        // Output paths are checked before any work: a missing folder found after minutes of sampling loses them.
        for (flag, path) in [("--image-out", imageOut), ("--latents-out", latentsOut), ("--out-dir", outDir)] {
            guard let path else { continue }
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError("\(flag) \(path): the folder \(parent) does not exist")
            }
        }
    }

    /// The prompt, which every command needs except `generate --prompts`.
    func requiredPrompt() throws -> String {
        guard let prompt else { throw ValidationError("Missing expected argument '--prompt <prompt>'") }
        return prompt
    }

    var mode: GenerationMode {
        imageOut != nil ? .textToImage : image != nil ? .imageToText : interleaved ? .interleaved : .text
    }

    /// The request these options state, as `generate` runs it and `submit` sends it.
    func generationRequest() throws -> GenerationRequest {
        GenerationRequest(
            mode: mode,
            prompt: try requiredPrompt(),
            maxTokens: maxTokens,
            sampling: sampling,
            seed: seed,
            guidance: cfg,
            steps: steps
        )
    }

    var sampling: SamplingParameters {
        let defaults = GenerationRequest.defaultSampling(mode)
        return SamplingParameters(
            temperature: temperature ?? defaults.temperature,
            topK: topK ?? defaults.topK,
            topP: topP
        )
    }
}
