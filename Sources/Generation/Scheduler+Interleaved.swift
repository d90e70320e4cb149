/// Interleaved jobs: text on the cond sequence; each BOI opens a fresh uncond sequence for one image sampled with
/// CFG, whose last latent goes to the cond sequence only; then EOI is forced and text continues.
extension Scheduler {
    /// Accepts an interleaved job and schedules what can run.
    public mutating func submit(_ job: InterleavedJob) throws(Refusal) -> [Directive] {
        try admit(job.id, prompts: [job.prompt.map(StageInput.token)], room: 1)
        let cond = newSequence(job: job.id, prompt: job.prompt.map(StageInput.token))
        jobs[job.id] = JobState(kind: .interleaved(job), cond: cond, phase: .text)
        return schedule()
    }

    mutating func interleavedOutput(
        _ job: InterleavedJob,
        sequence id: UInt64,
        row: [Float],
        into round: inout OutputRound
    ) {
        let state = jobs[job.id]!
        switch state.phase {
        case .text:
            // As the reference loop: no token is chosen once the budget or the context is used up.
            let position = sequences[id]!.position
            if state.generated >= job.maxTokens || position >= configuration.contextLength {
                closeTextRun(job.id)
                let reason: FinishReason = state.generated >= job.maxTokens ? .maxTokens : .contextFull
                round.directives += finish(job.id, reason: reason)
                return
            }
            var mask = job.mask
            let fits =
                state.generated + job.patches + 2 <= job.maxTokens
                && position + job.patches + 2 <= configuration.contextLength
            if fits { mask.banned.removeAll { $0 == job.boi..<(job.boi + 1) } }
            let choice = TokenChoice(
                sequenceID: id,
                sampling: job.sampling,
                seed: job.seed,
                counter: UInt64(state.generated),
                mask: mask
            )
            round.choose(choice, after: row)
        case .image(let uncond):
            guard let rows = pairCondition(storing: row, for: id, cond: state.cond, uncond: uncond) else { return }
            round.patches.append(
                PatchWork(
                    job: job.id,
                    key: PatchKey(seed: job.seed, image: state.images, patch: state.latents.count),
                    condition: rows.cond,
                    unconditional: rows.uncond,
                    guidance: job.guidance,
                    steps: job.steps
                )
            )
        case .closing:
            // The last latent is in: EOI is forced (no head call) and text continues after it.
            jobs[job.id]!.generated += 1
            jobs[job.id]!.tokens.append(job.eoi)
            jobs[job.id]!.phase = .text
            round.directives.append(.token(job: job.id, token: job.eoi))
            sequences[id]!.feed(.token(job.eoi))
        }
    }

    mutating func interleavedToken(_ token: Int, job: InterleavedJob) -> [Directive] {
        jobs[job.id]!.generated += 1
        jobs[job.id]!.tokens.append(token)
        let state = jobs[job.id]!
        let position = sequences[state.cond]?.position ?? 0
        let stop = job.stopIDs.contains(token)
        let budgetUsed = state.generated >= job.maxTokens
        if stop || (token != job.boi && (budgetUsed || position >= configuration.contextLength)) {
            if !stop { jobs[job.id]!.textRun.append(token) }
            closeTextRun(job.id)
            let reason: FinishReason = stop ? .stopToken(token) : budgetUsed ? .maxTokens : .contextFull
            return [.token(job: job.id, token: token)] + finish(job.id, reason: reason)
        }
        if token == job.boi {
            closeTextRun(job.id)
            // A fresh unconditional sequence for this image, paired with the cond sequence.
            let uncond = newSequence(job: job.id, prompt: job.nullPrompt.map(StageInput.token), partner: state.cond)
            pair(state.cond, uncond)
            jobs[job.id]!.phase = .image(uncond: uncond)
        } else {
            jobs[job.id]!.textRun.append(token)
        }
        sequences[state.cond]!.feed(.token(token))
        return [.token(job: job.id, token: token)]
    }

    mutating func interleavedPatch(_ latent: [Float], job: InterleavedJob) -> [Directive] {
        guard case .image(let uncond) = jobs[job.id]!.phase else { return [] }
        jobs[job.id]!.latents.append(latent)
        let state = jobs[job.id]!
        let done: [Directive] = [
            .patchDone(
                job: job.id,
                image: state.images,
                done: state.latents.count,
                total: job.patches,
                latent: latent
            )
        ]
        guard state.latents.count == job.patches else {
            for id in [state.cond, uncond] { sequences[id]?.feed(.latent(latent)) }
            return done
        }
        // The last latent goes to the cond sequence only; this image's uncond sequence is done.
        sequences[uncond] = nil
        sequences[state.cond]?.partner = nil
        sequences[state.cond]?.feed(.latent(latent))
        jobs[job.id]!.pieces.append(.image(state.latents))
        jobs[job.id]!.latents = []
        jobs[job.id]!.images += 1
        jobs[job.id]!.generated += job.patches
        jobs[job.id]!.phase = .closing
        return done + [.release(sequences: [uncond])]
    }

    /// Ends the current text run as a piece of the answer.
    mutating func closeTextRun(_ job: UInt64) {
        guard let run = jobs[job]?.textRun, !run.isEmpty else { return }
        jobs[job]!.pieces.append(.text(run))
        jobs[job]!.textRun = []
    }
}
