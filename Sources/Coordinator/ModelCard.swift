import Checkpoint
import Engine
import Heads
import Model
import Tensor
import Tokenizer
import Wire

/// What the coordinator knows of the model: its configuration and tokenizer, never its weights. It turns a client's
/// `JobSpec` into the scheduler's job exactly as the single-process engine sets up the same request, so both give
/// the same output.
public struct ModelCard: Sendable {
    public let configuration: OrthusConfiguration
    public let tokenizer: Tokenizer
    public let special: SpecialTokens
    public let textMask: LogitMask
    /// Patches per image and the width of one latent.
    public let patches: Int
    public let latentDim: Int

    /// The unconditional prompts of the reference: text-to-image, and every image of an interleaved answer.
    static let imageNullPrompt = "Generate an image."
    static let interleavedNullPrompt = "generate images"

    public init(directory: ModelDirectory) throws {
        configuration = directory.configuration
        tokenizer = try Tokenizer(path: directory.tokenizerPath)
        special = SpecialTokens.resolve(configuration, tokenizer)
        textMask = TextModel.textOnlyMask(configuration: configuration, special: special, tokenizer: tokenizer)
        let vq = configuration.vqConfig ?? VQConfiguration()
        patches = vq.patchesPerImage
        latentDim = vq.latentDim
    }

    public var hiddenSize: Int { configuration.hiddenSize }
    public var layerCount: Int { configuration.layerCount }
    public var contextLength: Int { configuration.contextLength }

    func sampling(_ spec: JobSpec) -> SamplingParameters {
        SamplingParameters(temperature: spec.temperature, topK: spec.topK, topP: spec.topP)
    }

    /// The token budget: the spec's, or the mode's default as `generate` has it (256 for text, the context for
    /// interleaved answers).
    func maxTokens(_ spec: JobSpec) -> Int {
        spec.maxTokens > 0 ? spec.maxTokens : spec.mode == .interleaved ? contextLength : 256
    }

    func options(_ spec: JobSpec) -> GenerationOptions {
        GenerationOptions(
            maxTokens: maxTokens(spec),
            sampling: sampling(spec),
            seed: spec.seed,
            mask: textMask,
            stopIDs: [special.sep, special.eos]
        )
    }

    /// Text: `BOS prompt SEP`, text-only mask, stops on SEP or EOS.
    public func textJob(id: UInt64, spec: JobSpec) throws -> TextJob {
        TextJob(
            id: id,
            prompt: try TextModel.promptIDs(spec.prompt, tokenizer: tokenizer, special: special).map(StageInput.token),
            options: options(spec)
        )
    }

    /// Image to text, once the diffusion pool has encoded the picture.
    public func imageQuestionJob(id: UInt64, spec: JobSpec, latents: Matrix) throws -> TextJob {
        TextJob(
            id: id,
            prompt: try OrthusModel.imageQuestionInputs(
                latents: latents,
                question: spec.prompt,
                tokenizer: tokenizer,
                special: special
            ),
            options: options(spec)
        )
    }

    /// Text to image: cond and uncond prompts ending in BOI.
    public func imageJob(id: UInt64, spec: JobSpec) throws -> ImageJob {
        ImageJob(
            id: id,
            prompt: try TextModel.promptIDs(spec.prompt, tokenizer: tokenizer, special: special) + [special.boi],
            nullPrompt: try TextModel.promptIDs(Self.imageNullPrompt, tokenizer: tokenizer, special: special) + [
                special.boi
            ],
            patches: patches,
            guidance: spec.guidance,
            steps: spec.steps,
            seed: spec.seed
        )
    }

    /// Interleaved text and images.
    public func interleavedJob(id: UInt64, spec: JobSpec) throws -> InterleavedJob {
        InterleavedJob(
            id: id,
            prompt: try TextModel.promptIDs(spec.prompt, tokenizer: tokenizer, special: special),
            nullPrompt: try TextModel.promptIDs(Self.interleavedNullPrompt, tokenizer: tokenizer, special: special) + [
                special.boi
            ],
            maxTokens: maxTokens(spec),
            sampling: sampling(spec),
            seed: spec.seed,
            mask: textMask,
            stopIDs: [special.sep, special.eos],
            boi: special.boi,
            eoi: special.eoi,
            patches: patches,
            guidance: spec.guidance,
            steps: spec.steps
        )
    }

    /// Checks a submitted job's values; the reason names the field.
    public func validate(_ spec: JobSpec) throws(JobRefusal) {
        guard spec.maxTokens >= 0 else { throw .invalid("max_tokens must not be negative") }
        guard spec.temperature >= 0, spec.temperature.isFinite else { throw .invalid("temperature must be >= 0") }
        guard spec.topP > 0, spec.topP <= 1 else { throw .invalid("top_p must be in (0, 1]") }
        if spec.mode == .textToImage || spec.mode == .interleaved {
            guard (1...1000).contains(spec.steps) else { throw .invalid("steps must be in 1...1000") }
            guard spec.guidance.isFinite else { throw .invalid("guidance must be a number") }
        }
    }
}

/// Why the coordinator refused or failed a job; sent to the client as the failure's text.
public enum JobRefusal: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case full(limit: Int)
    case unknownJob(UInt64)
    case failed(String)

    public var description: String {
        switch self {
        case .invalid(let detail): "invalid job: \(detail)"
        case .full(let limit): "the cluster is full: \(limit) jobs are running or queued; try again later"
        case .unknownJob(let id): "no job \(id) is known to this coordinator"
        case .failed(let detail): detail
        }
    }
}
