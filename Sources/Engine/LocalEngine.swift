import Checkpoint
import Generation
import Heads
import ImageIO
import Tensor
import Tokenizer
import VQVAE

/// The whole model in one process: every layer, the LM head and, for an Orthus checkpoint, the diffusion head and the
/// VQ-VAE. Requests are planned by the same `JobPlanner` as the cluster's and run by the same `Scheduler`, through
/// `LocalExecutor`; several requests run together with continuous batching.
public final class LocalEngine {
    /// One request for this process: the request, the picture of an image-to-text request, and noise
    /// `[image][patch][latent]` that replaces the seeded noise.
    public struct Job: Sendable {
        public var request: GenerationRequest
        public var picture: Image8?
        public var noise: GivenNoise?

        public init(_ request: GenerationRequest, picture: Image8? = nil, noise: GivenNoise? = nil) {
            self.request = request
            self.picture = picture
            self.noise = noise
        }
    }

    public let planner: JobPlanner
    public let directory: ModelDirectory
    /// Present for an Orthus checkpoint (plain Chameleon has no image parts).
    public let pictures: PictureCodec?
    private var executor: LocalExecutor
    private var nextJob: UInt64 = 1

    /// Prompts are prefilled in chunks of `prefillChunk` positions, at most `maxRows` rows per forward pass.
    public init(directory: ModelDirectory, maxRows: Int = 256, prefillChunk: Int = 256) throws {
        self.directory = directory
        planner = try JobPlanner(directory: directory)
        let isOrthus =
            directory.weightMap[TensorManifest.codebookIn] != nil
            && directory.weightMap[TensorManifest.DiffusionHeadNames.inputProjection + ".weight"] != nil
        pictures = isOrthus ? try PictureCodec(directory: directory) : nil
        executor = try LocalExecutor(
            directory: directory,
            configuration: Scheduler.Configuration(
                pipelineDepth: 1,
                maxRows: maxRows,
                prefillChunk: prefillChunk,
                contextLength: directory.configuration.contextLength
            ),
            diffusionHead: isOrthus ? try DiffusionHead(directory: directory) : nil
        )
    }

    public var tokenizer: Tokenizer { planner.tokenizer }

    /// Runs every job together; `onUpdate` hears each job's tokens and patches (by its index in `jobs`) as they come.
    /// A job that cannot be planned or admitted fails alone; the others run.
    public func run(
        _ jobs: [Job],
        onUpdate: (Int, LocalExecutor.Update) throws -> Void = { _, _ in }
    ) throws -> [Result<JobAnswer, any Error>] {
        var results = [Result<JobAnswer, any Error>?](repeating: nil, count: jobs.count)
        var index: [UInt64: Int] = [:]
        func deliver(_ updates: [LocalExecutor.Update]) throws {
            for update in updates {
                let job: UInt64
                switch update {
                case .token(let id, _), .patch(let id, _, _, _): job = id
                case .finished(let id, let answer):
                    job = id
                    results[index[id]!] = .success(answer)
                }
                try onUpdate(index[job]!, update)
            }
        }
        for (position, job) in jobs.enumerated() {
            let id = nextJob
            nextJob += 1
            index[id] = position
            do {
                try deliver(try executor.submit(try plan(id: id, job), noise: job.noise))
            } catch {
                results[position] = .failure(error)
            }
        }
        while !executor.isIdle { try deliver(try executor.step()) }
        return results.map { $0! }
    }

    /// Runs one job.
    public func run(_ job: Job, onUpdate: (LocalExecutor.Update) throws -> Void = { _ in }) throws -> JobAnswer {
        try run([job]) { try onUpdate($1) }[0].get()
    }

    /// Decodes one image's latents `[patch][latent]` to 8-bit RGB.
    public func decode(_ latents: [[Float]]) throws -> Image8 {
        guard let pictures else { throw GenerationError.notOrthus(path: directory.path) }
        return pictures.decode(patches: latents)
    }

    private func plan(id: UInt64, _ job: Job) throws -> PlannedJob {
        if job.request.mode != .text, pictures == nil { throw GenerationError.notOrthus(path: directory.path) }
        if let noise = job.noise {
            let images = noise.images
            let shape = [images.count, images.first?.count ?? 0, images.first?.first?.count ?? 0]
            try planner.validateNoise(shape: shape, for: job.request)
        }
        guard job.request.mode == .imageToText else { return try planner.plan(id: id, job.request) }
        guard let picture = job.picture, let pictures else {
            throw RequestError("an image-to-text request needs a picture")
        }
        return try planner.imageQuestionJob(id: id, job.request, latents: try pictures.encode(picture))
    }
}
