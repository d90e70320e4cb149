import Tensor

/// Image patches being sampled together, from many requests and at different DDIM steps: each `advance()` takes
/// one step for every unfinished patch with one head call per schedule length, and returns the requests whose patches
/// are all done. Used by the diffusion-pool worker and by the single-process executor, so both sample alike.
public struct PatchBatch: Sendable {
    /// One patch to sample: the final hidden states of its CFG pair, its initial noise, guidance and steps.
    public struct Patch: Sendable, Equatable {
        public var condition: [Float]
        public var unconditional: [Float]
        public var noise: [Float]
        public var guidance: Float
        public var steps: Int

        public init(condition: [Float], unconditional: [Float], noise: [Float], guidance: Float, steps: Int) {
            self.condition = condition
            self.unconditional = unconditional
            self.noise = noise
            self.guidance = guidance
            self.steps = steps
        }
    }

    struct Running: Sendable {
        var id: UInt64
        var states: [PatchState]
        var steps: [Int]
        var latents: [[Float]?]
    }

    public let head: DiffusionHead
    var samplers: [Int: GuidedSampler] = [:]
    var running: [Running] = []

    public init(head: DiffusionHead) { self.head = head }

    public var isEmpty: Bool { running.isEmpty }
    /// Patches being sampled (each is a CFG pair of rows in a head call).
    public var patchCount: Int { running.reduce(0) { $0 + $1.latents.filter { $0 == nil }.count } }

    /// Starts a request's patches; they join the next step.
    public mutating func add(id: UInt64, _ patches: [Patch]) {
        for patch in patches where samplers[patch.steps] == nil {
            samplers[patch.steps] = GuidedSampler(head: head, steps: patch.steps)
        }
        let states = patches.map { patch in
            samplers[patch.steps]!.start(
                noise: patch.noise,
                condition: patch.condition,
                unconditional: patch.unconditional,
                guidance: patch.guidance
            )
        }
        running.append(
            Running(
                id: id,
                states: states,
                steps: patches.map(\.steps),
                latents: Array(repeating: nil, count: states.count)
            )
        )
    }

    /// One DDIM step for every unfinished patch, grouped by schedule; returns the finished requests (their latents in
    /// VQ-latent scale, in request order) and forgets them.
    public mutating func advance() -> [(id: UInt64, latents: [[Float]])] {
        for steps in Set(running.flatMap(\.steps)).sorted() {
            let sampler = samplers[steps]!
            var batch: [PatchState] = []
            var places: [(Int, Int)] = []
            for (r, request) in running.enumerated() {
                for (p, state) in request.states.enumerated()
                where request.steps[p] == steps && !sampler.isFinished(state) {
                    batch.append(state)
                    places.append((r, p))
                }
            }
            sampler.advance(&batch)
            for ((r, p), state) in zip(places, batch) {
                running[r].states[p] = state
                if sampler.isFinished(state) { running[r].latents[p] = sampler.latent(of: state) }
            }
        }
        var finished: [(id: UInt64, latents: [[Float]])] = []
        running.removeAll { request in
            // A request with no patches is finished at once.
            let latents = request.latents.compactMap { $0 }
            guard latents.count == request.latents.count else { return false }
            finished.append((request.id, latents))
            return true
        }
        return finished
    }
}
