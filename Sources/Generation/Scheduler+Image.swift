/// Text-to-image jobs: a cond and an uncond sequence, each ending in BOI, fed every latent but the last.
extension Scheduler {
    /// Accepts a text-to-image job (a cond/uncond pair) and schedules what can run.
    public mutating func submit(_ job: ImageJob) throws(Refusal) -> [Directive] {
        try admit(
            job.id,
            prompts: [job.prompt.map(StageInput.token), job.nullPrompt.map(StageInput.token)],
            room: job.patches - 1
        )
        let cond = newSequence(job: job.id, prompt: job.prompt.map(StageInput.token))
        let uncond = newSequence(job: job.id, prompt: job.nullPrompt.map(StageInput.token), partner: cond)
        pair(cond, uncond)
        jobs[job.id] = JobState(kind: .image(job), cond: cond, phase: .image(uncond: uncond))
        return schedule()
    }

    mutating func imageOutput(_ job: ImageJob, sequence id: UInt64, row: [Float], into round: inout OutputRound) {
        guard let state = jobs[job.id], case .image(let uncond) = state.phase,
            let rows = pairCondition(storing: row, for: id, cond: state.cond, uncond: uncond)
        else { return }
        round.patches.append(
            PatchWork(
                job: job.id,
                key: PatchKey(seed: job.seed, image: 0, patch: state.latents.count),
                condition: rows.cond,
                unconditional: rows.uncond,
                guidance: job.guidance,
                steps: job.steps
            )
        )
    }

    mutating func imagePatch(_ latent: [Float], job: ImageJob) -> [Directive] {
        jobs[job.id]!.latents.append(latent)
        let state = jobs[job.id]!
        let done: [Directive] = [
            .patchDone(job: job.id, image: 0, done: state.latents.count, total: job.patches, latent: latent)
        ]
        guard state.latents.count == job.patches else {
            if case .image(let uncond) = state.phase {
                for id in [state.cond, uncond] { sequences[id]?.feed(.latent(latent)) }
            }
            return done
        }
        // The last latent is not fed back (the reference returns right after sampling it).
        jobs[job.id]!.pieces = [.image(state.latents)]
        return done + finish(job.id, reason: .imageComplete)
    }

    /// Makes two sequences a CFG pair.
    mutating func pair(_ cond: UInt64, _ uncond: UInt64) {
        sequences[cond]?.partner = uncond
        sequences[uncond]?.partner = cond
    }
}
