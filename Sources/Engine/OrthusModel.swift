import Checkpoint
import Heads
import ImageIO
import Model
import Tensor
import Tokenizer
import VQVAE

/// How image patches are sampled.
public struct ImageOptions: Sendable {
    /// Classifier-free guidance scale (Orthus: 5 for text-to-image, 3 in interleaved generation).
    public var guidance: Float
    /// DDIM steps (Orthus: 100).
    public var steps: Int
    /// Keys the per-patch noise (image k, patch i) when `noise` is nil.
    public var seed: UInt64
    /// Initial noise `[image][patch][latent]`, to reproduce another implementation's run exactly.
    public var noise: [[[Float]]]?

    public init(guidance: Float, steps: Int = 100, seed: UInt64 = 0, noise: [[[Float]]]? = nil) {
        self.guidance = guidance
        self.steps = steps
        self.seed = seed
        self.noise = noise
    }
}

/// Progress of a generation, for progress bars.
public enum GenerationEvent: Sendable {
    case patch(image: Int, done: Int, total: Int)
    case token(Int)
}

/// A piece of an interleaved answer.
public enum InterleavedPiece: Sendable, Equatable {
    case text([Int])
    case image(latents: [[Float]])
}

/// The whole Orthus model in one process: backbone, LM head, diffusion head and VQ-VAE (orthus-model.md 4).
public struct OrthusModel: Sendable {
    public let text: TextModel
    public let head: DiffusionHead
    public let encoder: VQEncoder
    public let decoder: VQDecoder
    public let tokenizer: Tokenizer
    public let special: SpecialTokens

    public init(directory: ModelDirectory, tokenizer: Tokenizer) throws {
        guard directory.weightMap[TensorManifest.codebookIn] != nil,
            directory.weightMap["mlp_head.input_proj.weight"] != nil
        else { throw OrthusError.notOrthus(path: directory.path) }
        text = try TextModel(directory: directory)
        head = try DiffusionHead(directory: directory)
        encoder = try VQEncoder(directory: directory)
        decoder = try VQDecoder(directory: directory)
        self.tokenizer = tokenizer
        special = SpecialTokens.resolve(directory.configuration, tokenizer)
    }

    var stack: LayerStack { text.stack }
    var patchCount: Int { decoder.patchCount }

    // MARK: - Text to image (orthus-model.md 4.1)

    /// The latents `[patch][latent]` of one image for `prompt`, with CFG against `nullPrompt`; cond and uncond run as
    /// one 2-row batch. The last latent is not fed back (the reference returns right after sampling it).
    public func textToImage(
        prompt: String,
        nullPrompt: String = "Generate an image.",
        options: ImageOptions,
        onEvent: (GenerationEvent) -> Void = { _ in }
    ) throws -> [[Float]] {
        let cond = try TextModel.promptIDs(prompt, tokenizer: tokenizer, special: special) + [special.boi]
        let uncond = try TextModel.promptIDs(nullPrompt, tokenizer: tokenizer, special: special) + [special.boi]
        try checkRoom(cond.count + patchCount - 1)
        var caches = [stack.makeCache(), stack.makeCache()]
        var x = try stack.embed(cond + uncond)
        try stack.forward(&x, rowCounts: [cond.count, uncond.count], caches: &caches)
        let z = Matrix.stacking(rows: [x.rows((cond.count - 1)..<cond.count), x.rows((x.rows - 1)..<x.rows)])
        return try samplePatches(image: 0, z: z, caches: &caches, feedLast: false, options: options, onEvent: onEvent)
    }

    /// Samples every patch of image `image`, feeding each latent to both sequences of the CFG pair
    /// (`caches[0]` cond, `caches[1]` uncond). With `feedLast`, the last latent is fed to the cond sequence only.
    func samplePatches(
        image: Int,
        z: Matrix,
        caches: inout [KVCache],
        feedLast: Bool,
        options: ImageOptions,
        onEvent: (GenerationEvent) -> Void
    ) throws -> [[Float]] {
        let sampler = GuidedSampler(head: head, steps: options.steps)
        var z = z
        var latents: [[Float]] = []
        for i in 0..<patchCount {
            let noise = try noise(image: image, patch: i, options: options)
            let patch = sampler.start(
                noise: noise,
                condition: Array(z.storage[0..<z.columns]),
                unconditional: Array(z.storage[z.columns...]),
                guidance: options.guidance
            )
            let latent = sampler.sample([patch])[0]
            latents.append(latent)
            onEvent(.patch(image: image, done: i + 1, total: patchCount))
            if i < patchCount - 1 {
                var next = try stack.embed([.latent(latent), .latent(latent)])
                try stack.forward(&next, rowCounts: [1, 1], caches: &caches)
                z = next
            } else if feedLast {
                var cond = [caches[0]]
                var next = try stack.embed([.latent(latent)])
                try stack.forward(&next, rowCounts: [1], caches: &cond)
                caches[0] = cond[0]
            }
        }
        return latents
    }

    func noise(image: Int, patch: Int, options: ImageOptions) throws -> [Float] {
        guard let given = options.noise else {
            return PatchNoise.gaussian(seed: options.seed, image: image, patch: patch, count: head.latentDim)
        }
        guard image < given.count, patch < given[image].count, given[image][patch].count == head.latentDim else {
            throw OrthusError.noiseShape(image: image, patch: patch, latent: head.latentDim)
        }
        return given[image][patch]
    }

    func checkRoom(_ positions: Int) throws {
        let context = text.configuration.contextLength
        guard positions <= context else { throw GenerationError.promptTooLong(tokens: positions, context: context) }
    }

    /// Decodes one image's latents to 8-bit RGB (`post_quant_conv` + decoder, then the reference postprocessing).
    public func decodeImage(_ latents: [[Float]]) -> Image8 {
        let pixels = decoder.decode(
            Matrix(rows: latents.count, columns: head.latentDim, values: latents.flatMap { $0 })
        )
        return ChameleonImage.postprocess(pixels.values, resolution: pixels.height)
    }

    // MARK: - Image to text (orthus-model.md 4.2)

    /// The prompt `BOS BOI <image>×n EOI BPE(question) SEP` with the encoder's latents at the `<image>` positions.
    public func imageQuestionInputs(_ image: Image8, question: String) throws -> [StageInput] {
        let pixels = try ChameleonImage.preprocess(image, resolution: encoder.resolution)
        let latents = encoder.encode(
            FeatureMap(channels: 3, height: encoder.resolution, width: encoder.resolution, values: pixels)
        )
        return try Self.imageQuestionInputs(
            latents: latents,
            question: question,
            tokenizer: tokenizer,
            special: special
        )
    }

    /// The image-to-text prompt around already encoded latents (one row per patch, raster order); the cluster's
    /// coordinator builds it from the diffusion pool's encoding.
    public static func imageQuestionInputs(
        latents: Matrix,
        question: String,
        tokenizer: Tokenizer,
        special: SpecialTokens
    ) throws -> [StageInput] {
        var inputs: [StageInput] = [.token(special.bos), .token(special.boi)]
        for row in 0..<latents.rows {
            inputs.append(.latent(Array(latents.storage[(row * latents.columns)..<((row + 1) * latents.columns)])))
        }
        inputs.append(.token(special.eoi))
        inputs += try tokenizer.encode(question).map(StageInput.token)
        inputs.append(.token(special.sep))
        return inputs
    }

    /// Answers a question about an image: greedy by default, text-only mask, stops on SEP or EOS.
    public func imageToText(
        _ image: Image8,
        question: String,
        maxTokens: Int,
        sampling: SamplingParameters = .greedy,
        seed: UInt64 = 0,
        onToken: (Int) throws -> Void = { _ in }
    ) throws -> GenerationResult {
        let inputs = try imageQuestionInputs(image, question: question)
        let options = GenerationOptions(
            maxTokens: maxTokens,
            sampling: sampling,
            seed: seed,
            mask: text.textOnlyMask(special, tokenizer: tokenizer),
            stopIDs: [special.sep, special.eos]
        )
        return try text.generate(prompt: inputs, options: options, onToken: onToken)
    }

    // MARK: - Interleaved (orthus-model.md 4.3)

    /// Text and images in one answer. Text is sampled (transformers' defaults: temperature 1, top-k 50); when BOI is
    /// produced, a fresh unconditional sequence `BOS BPE(nullPrompt) SEP BOI` is prefilled and the patches are sampled
    /// with CFG, each latent fed to both; the last latent is fed to the cond sequence only and EOI is forced.
    /// `maxTokens` counts every generated position (text, BOI, patches, EOI); BOI is refused when an image no longer
    /// fits. Stops on SEP or EOS.
    public func interleaved(
        prompt: String,
        nullPrompt: String = "generate images",
        maxTokens: Int,
        sampling: SamplingParameters = SamplingParameters(temperature: 1, topK: 50),
        image options: ImageOptions,
        onEvent: (GenerationEvent) -> Void = { _ in }
    ) throws -> [InterleavedPiece] {
        let ids = try TextModel.promptIDs(prompt, tokenizer: tokenizer, special: special)
        let context = text.configuration.contextLength
        try checkRoom(ids.count + 1)
        var caches = [stack.makeCache()]
        var hidden = try text.prefill(ids, caches: &caches).rows((ids.count - 1)..<ids.count)
        var pieces: [InterleavedPiece] = []
        var textRun: [Int] = []
        var generated = 0
        var images = 0
        let baseMask = text.textOnlyMask(special, tokenizer: tokenizer)
        while generated < maxTokens, caches[0].count < context {
            var mask = baseMask
            let roomForImage = generated + patchCount + 2 <= maxTokens && caches[0].count + patchCount + 2 <= context
            if roomForImage { mask.banned.removeAll { $0 == special.boi..<(special.boi + 1) } }
            let token = text.choose(
                after: hidden,
                mask: mask,
                sampling: sampling,
                seed: options.seed,
                counter: generated
            )
            generated += 1
            onEvent(.token(token))
            if token == special.sep || token == special.eos { break }
            if token != special.boi {
                textRun.append(token)
                var x = try stack.embed([token])
                try stack.forward(&x, rowCounts: [1], caches: &caches)
                hidden = x
                continue
            }
            if !textRun.isEmpty { pieces.append(.text(textRun)) }
            textRun = []
            // BOI: feed it to cond; start a fresh uncond sequence ending in BOI; sample the image with CFG.
            let uncond = try TextModel.promptIDs(nullPrompt, tokenizer: tokenizer, special: special) + [special.boi]
            var pair = [caches[0], stack.makeCache()]
            var x = try stack.embed([special.boi] + uncond)
            try stack.forward(&x, rowCounts: [1, uncond.count], caches: &pair)
            let z = Matrix.stacking(rows: [x.rows(0..<1), x.rows((x.rows - 1)..<x.rows)])
            let latents = try samplePatches(
                image: images,
                z: z,
                caches: &pair,
                feedLast: true,
                options: options,
                onEvent: onEvent
            )
            caches[0] = pair[0]
            pieces.append(.image(latents: latents))
            images += 1
            generated += patchCount
            // EOI is forced after the last patch, then fed.
            onEvent(.token(special.eoi))
            generated += 1
            var eoi = try stack.embed([special.eoi])
            try stack.forward(&eoi, rowCounts: [1], caches: &caches)
            hidden = eoi
        }
        if !textRun.isEmpty { pieces.append(.text(textRun)) }
        return pieces
    }
}

/// Errors specific to the Orthus (image) modes.
public enum OrthusError: Error, CustomStringConvertible, Equatable {
    case notOrthus(path: String)
    case noiseShape(image: Int, patch: Int, latent: Int)

    public var description: String {
        switch self {
        case .notOrthus(let path):
            "\(path) is a text-only Chameleon checkpoint (no model.codebook_in / mlp_head): images need an Orthus checkpoint"
        case .noiseShape(let image, let patch, let latent):
            "--noise-in has no \(latent)-value noise for patch \(patch) of image \(image) (shape [images, patches, \(latent)])"
        }
    }
}

extension Matrix {
    /// Stacks single-row matrices of equal width.
    static func stacking(rows: [Matrix]) -> Matrix {
        var out = Matrix(rows: 0, columns: rows[0].columns)
        for row in rows { out.append(rowsOf: row) }
        return out
    }
}
