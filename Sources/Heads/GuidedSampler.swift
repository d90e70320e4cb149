import Tensor

/// One image patch being denoised: its latent in the head's scale (×0.1 of the VQ latent), its progress through the
/// schedule, and the two conditions of its classifier-free-guidance pair.
public struct PatchState: Sendable {
    /// The current sample x_t; starts as the initial noise.
    public var x: [Float]
    /// Index into the schedule's timesteps of the next step to take.
    public var stepIndex: Int = 0
    /// `cond_embed(z)` of the conditional and the unconditional sequence.
    let condition: [Float]
    let unconditional: [Float]
    public let guidance: Float

    public init(noise: [Float], condition: [Float], unconditional: [Float], guidance: Float) {
        precondition(condition.count == unconditional.count, "condition widths differ")
        x = noise
        self.condition = condition
        self.unconditional = unconditional
        self.guidance = guidance
    }
}

/// DDIM sampling with classifier-free guidance for many patches at once (docs/model.md §3.3-3.4).
///
/// Each patch contributes two rows to one head call, its cond and uncond condition over the same x_t; the guided
/// v is `v_u + s·(v_c − v_u)`. Patches may be at different steps: every row gets the time embedding of its own step,
/// and the row-invariant kernels make a patch's result independent of what else is in the batch.
public struct GuidedSampler: Sendable {
    public let head: DiffusionHead
    public let schedule: DDIMSchedule
    /// `time_embed(t)` for every timestep of the schedule, computed once.
    let timeTable: Matrix

    public init(head: DiffusionHead, steps: Int) {
        self.head = head
        schedule = DDIMSchedule(steps: steps)
        timeTable = head.timeEmbeddings(schedule.timesteps)
    }

    /// Starts a patch from `noise` conditioned on the final hidden states of the cond and uncond sequences.
    public func start(noise: [Float], condition z: [Float], unconditional zu: [Float], guidance: Float) -> PatchState {
        precondition(noise.count == head.latentDim, "noise has \(noise.count) values, latent is \(head.latentDim)")
        let conditions = head.conditionEmbeddings(Matrix(rows: 2, columns: head.conditionDim, values: z + zu))
        return PatchState(
            noise: noise,
            condition: Array(conditions.storage[0..<head.width]),
            unconditional: Array(conditions.storage[head.width...]),
            guidance: guidance
        )
    }

    /// Whether a patch has taken every step.
    public func isFinished(_ patch: PatchState) -> Bool { patch.stepIndex >= schedule.timesteps.count }

    /// Advances every unfinished patch by one DDIM step, in one call of the head.
    public func advance(_ patches: inout [PatchState]) {
        let active = patches.indices.filter { !isFinished(patches[$0]) }
        guard !active.isEmpty else { return }
        let (latent, width) = (head.latentDim, head.width)
        var x = Matrix(rows: 2 * active.count, columns: latent)
        var time = Matrix(rows: 2 * active.count, columns: width)
        var condition = Matrix(rows: 2 * active.count, columns: width)
        for (slot, index) in active.enumerated() {
            let patch = patches[index]
            let timeRow = timeTable.storage[(patch.stepIndex * width)..<((patch.stepIndex + 1) * width)]
            for (offset, c) in [(0, patch.condition), (1, patch.unconditional)] {
                let row = 2 * slot + offset
                x.storage.replaceSubrange((row * latent)..<((row + 1) * latent), with: patch.x)
                time.storage.replaceSubrange((row * width)..<((row + 1) * width), with: timeRow)
                condition.storage.replaceSubrange((row * width)..<((row + 1) * width), with: c)
            }
        }
        let v = head.predict(x: x, time: time, condition: condition)
        for (slot, index) in active.enumerated() {
            let s = patches[index].guidance
            let guided: [Float] = (0..<latent).map { i in
                let vc = v.storage[(2 * slot) * latent + i]
                let vu = v.storage[(2 * slot + 1) * latent + i]
                return vu + s * (vc - vu)
            }
            schedule.step(&patches[index].x, v: guided, timestep: schedule.timesteps[patches[index].stepIndex])
            patches[index].stepIndex += 1
        }
    }

    /// The finished patch's latent in VQ-latent scale (the head works at ×0.1).
    public func latent(of patch: PatchState) -> [Float] {
        precondition(isFinished(patch), "the patch has \(schedule.timesteps.count - patch.stepIndex) steps left")
        return patch.x.map { $0 / 0.1 }
    }

    /// Samples each patch to the end; returns latents in VQ-latent scale.
    public func sample(_ patches: [PatchState]) -> [[Float]] {
        var patches = patches
        while patches.contains(where: { !isFinished($0) }) { advance(&patches) }
        return patches.map(latent(of:))
    }
}
