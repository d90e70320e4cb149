import Checkpoint
import Generation
import Heads
import Model
import Tensor

/// The `Generation` scheduler's directives carried out in this process: micro-batches through the stage computes in
/// order (one holding every layer, or a split), token requests through the LM head, patch requests through the
/// diffusion head. Results come back as events in the order they were produced, as a cluster's would, and patch
/// requests wait until nothing else is queued so that every image in flight advances in one head call per DDIM step.
///
/// One process and the cluster run the same scheduler; only this executor differs from the coordinator's shell.
public struct LocalExecutor: Sendable {
    /// What the caller hears about its jobs.
    public enum Update: Sendable, Equatable {
        case token(job: UInt64, token: Int)
        case patch(job: UInt64, image: Int, done: Int, total: Int)
        case finished(job: UInt64, answer: JobAnswer)
    }

    enum Event {
        case output(microBatch: UInt64, rows: Matrix)
        case sampled(request: UInt64, tokens: [Int])
        case patches(request: UInt64, latents: [[Float]])
    }

    public private(set) var scheduler: Scheduler
    private(set) var stages: [StageCompute]
    let directory: ModelDirectory
    let lmHead: LMHead
    private var patches: PatchBatch?
    /// Noise a job's caller supplied, `[image][patch][latent]`, in place of the seeded noise.
    private var givenNoise: [UInt64: GivenNoise] = [:]
    private var events: [Event] = []
    private var waitingPatches = false

    /// `split` covers the model's layers in order; one range (the default) is the whole model in one compute.
    public init(
        directory: ModelDirectory,
        configuration: Scheduler.Configuration,
        split: [Range<Int>]? = nil,
        diffusionHead: DiffusionHead? = nil
    ) throws {
        self.directory = directory
        let layers = split ?? [0..<directory.configuration.layerCount]
        stages = try layers.map { try StageCompute(directory: directory, layers: $0) }
        lmHead = try LMHead(directory: directory)
        patches = diffusionHead.map(PatchBatch.init)
        scheduler = Scheduler(configuration: configuration)
    }

    /// Sequences whose KV caches some stage still holds.
    public var cachedSequences: Int { stages.map(\.sequenceCount).reduce(0, +) }

    /// Whether every job has finished (nothing queued, nothing sampling).
    public var isIdle: Bool { events.isEmpty && (patches?.isEmpty ?? true) }

    /// Accepts a job; `noise` replaces its seeded patch noise.
    public mutating func submit(_ job: PlannedJob, noise: GivenNoise? = nil) throws -> [Update] {
        if let noise { givenNoise[job.id] = noise }
        return try carryOut(try scheduler.submit(job))
    }

    /// Handles the next result (a stage output or a head answer), or advances every patch in flight by one DDIM step
    /// when nothing else is queued. Returns what the jobs produced.
    public mutating func step() throws -> [Update] {
        if events.isEmpty, var batch = patches, !batch.isEmpty {
            let done = batch.advance()
            patches = batch
            for (request, latents) in done { events.append(.patches(request: request, latents: latents)) }
            return []
        }
        guard !events.isEmpty else { return [] }
        switch events.removeFirst() {
        case .output(let id, let rows): return try carryOut(try scheduler.stageOutput(microBatch: id, lastRows: rows))
        case .sampled(let id, let tokens): return try carryOut(try scheduler.sampled(requestID: id, tokens: tokens))
        case .patches(let id, let latents):
            return try carryOut(try scheduler.patchesSampled(requestID: id, latents: latents))
        }
    }

    /// Steps until every job has finished; returns what they produced, in order.
    public mutating func runUntilIdle() throws -> [Update] {
        var updates: [Update] = []
        while !isIdle { updates += try step() }
        return updates
    }

    /// Stage `index` is lost and a fresh one takes its place: its caches and every output not yet handled are gone,
    /// and the scheduler replays every sequence onto the new pipeline (what the coordinator does on a stage loss).
    public mutating func replaceStage(_ index: Int) throws -> [Update] {
        stages[index] = try StageCompute(directory: directory, layers: stages[index].layers)
        events.removeAll { if case .output = $0 { true } else { false } }
        scheduler.suspend()
        return try carryOut(scheduler.replay())
    }

    private mutating func carryOut(_ directives: [Scheduler.Directive]) throws -> [Update] {
        var updates: [Update] = []
        for directive in directives {
            switch directive {
            case .forward(let id, let slices, let inputs):
                var output = try stages[0].run(slices, input: .inputs(inputs))
                for i in stages.indices.dropFirst() { output = try stages[i].run(slices, input: .hidden(output)) }
                events.append(.output(microBatch: id, rows: StageCompute.lastRows(output, slices: slices)))
            case .sampleTokens(let id, let rows, let hidden):
                let logits = lmHead.logits(hidden)
                let width = logits.columns
                let tokens = rows.enumerated().map { index, row in
                    row.choose(Array(logits.storage[(index * width)..<((index + 1) * width)]))
                }
                events.append(.sampled(request: id, tokens: tokens))
            case .samplePatches(let id, let work):
                guard patches != nil else { throw GenerationError.noDiffusionHead }
                patches!.add(id: id, try work.map(patch))
            case .token(let job, let token): updates.append(.token(job: job, token: token))
            case .patchDone(let job, let image, let done, let total, _):
                updates.append(.patch(job: job, image: image, done: done, total: total))
            case .finished(let job, let answer):
                givenNoise[job] = nil
                updates.append(.finished(job: job, answer: answer))
            case .release(let ids): for i in stages.indices { stages[i].release(ids) }
            }
        }
        return updates
    }

    /// A patch with its noise: the caller's, or drawn from its key.
    private func patch(_ work: PatchWork) throws -> PatchBatch.Patch {
        let latentDim = patches!.head.latentDim
        let key = work.key
        let noise =
            try givenNoise[work.job]?.patch(key)
            ?? PatchNoise.gaussian(seed: key.seed, image: key.image, patch: key.patch, count: latentDim)
        guard noise.count == latentDim else {
            throw GenerationError.noiseShape(image: key.image, patch: key.patch, latent: latentDim)
        }
        return PatchBatch.Patch(
            condition: work.condition,
            unconditional: work.unconditional,
            noise: noise,
            guidance: work.guidance,
            steps: work.steps
        )
    }
}

/// Why a generation in this process failed.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case notOrthus(path: String)
    case noDiffusionHead
    case noiseShape(image: Int, patch: Int, latent: Int)

    public var description: String {
        switch self {
        case .notOrthus(let path):
            "\(path) is a text-only Chameleon checkpoint (no model.codebook_in / mlp_head): images need an Orthus checkpoint"
        case .noDiffusionHead: "image patches were asked of an executor without the diffusion head"
        case .noiseShape(let image, let patch, let latent):
            "the given noise has no \(latent)-value noise for patch \(patch) of image \(image) (shape [images, patches, \(latent)])"
        }
    }
}
