/// Text jobs (text to text, and image to text once the picture is encoded): one sequence, one token per step.
extension Scheduler {
    /// Accepts a text job and schedules what can run.
    public mutating func submit(_ job: TextJob) throws(Refusal) -> [Directive] {
        try admit(job.id, prompts: [job.prompt], room: 1)
        let id = newSequence(job: job.id, prompt: job.prompt)
        jobs[job.id] = JobState(kind: .text(job), cond: id, phase: .text)
        return schedule()
    }

    mutating func textOutput(_ job: TextJob, sequence id: UInt64, row: [Float], into round: inout OutputRound) {
        let choice = TokenChoice(
            sequenceID: id,
            sampling: job.options.sampling,
            seed: job.options.seed,
            counter: UInt64(jobs[job.id]!.tokens.count),
            mask: job.options.mask
        )
        round.choose(choice, after: row)
    }

    mutating func textToken(_ token: Int, job: TextJob, sequence id: UInt64) -> [Directive] {
        jobs[job.id]!.tokens.append(token)
        let generated = jobs[job.id]!.tokens.count
        let reason: FinishReason? =
            job.options.stopIDs.contains(token)
            ? .stopToken(token)
            : generated >= job.options.maxTokens
                ? .maxTokens
                : sequences[id]!.position >= configuration.contextLength ? .contextFull : nil
        guard let reason else {
            sequences[id]!.feed(.token(token))
            return [.token(job: job.id, token: token)]
        }
        return [.token(job: job.id, token: token)] + finish(job.id, reason: reason)
    }
}
