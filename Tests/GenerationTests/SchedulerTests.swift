import Generation
import Tensor
import Testing

/// The scheduler alone, as a pure state machine: refusals, micro-batch forming, lanes and CFG pairs.
@Suite struct SchedulerTests {
    @Test func badInputIsRefusedByName() throws {
        var scheduler = Scheduler(configuration: Scheduler.Configuration(pipelineDepth: 2, contextLength: 8))
        #expect(throws: Scheduler.Refusal.emptyPrompt(job: 1)) {
            try scheduler.submit(TextJob(id: 1, prompt: [], options: GenerationOptions(maxTokens: 1)))
        }
        #expect(throws: Scheduler.Refusal.promptTooLong(job: 2, tokens: 9, context: 8)) {
            try scheduler.submit(
                TextJob(id: 2, prompt: Array(repeating: .token(5), count: 9), options: GenerationOptions(maxTokens: 1))
            )
        }
        #expect(throws: Scheduler.Refusal.promptTooLong(job: 5, tokens: 3, context: 8)) {
            try scheduler.submit(
                ImageJob(
                    id: 5,
                    prompt: [0, 5, 8197],
                    nullPrompt: [0, 8197],
                    patches: 7,
                    guidance: 5,
                    steps: 2,
                    seed: 0
                )
            )
        }
        _ = try scheduler.submit(
            TextJob(id: 3, prompt: [.token(0), .token(5)], options: GenerationOptions(maxTokens: 1))
        )
        #expect(throws: Scheduler.Refusal.duplicateJob(3)) {
            try scheduler.submit(TextJob(id: 3, prompt: [.token(0)], options: GenerationOptions(maxTokens: 1)))
        }
        #expect(throws: Scheduler.Refusal.unknownMicroBatch(99)) {
            try scheduler.stageOutput(microBatch: 99, lastRows: Matrix(rows: 1, columns: 4))
        }
        #expect(throws: Scheduler.Refusal.rowCount(expected: 1, found: 2)) {
            try scheduler.stageOutput(microBatch: 1, lastRows: Matrix(rows: 2, columns: 4))
        }
        #expect(throws: Scheduler.Refusal.unknownRequest(7)) { try scheduler.sampled(requestID: 7, tokens: [1]) }
        #expect(throws: Scheduler.Refusal.unknownRequest(8)) {
            try scheduler.patchesSampled(requestID: 8, latents: [[1]])
        }
    }

    /// Drives the scheduler alone: stages answer in order, the LM head answers each request right after the output
    /// it follows, every token is 5. Returns the number of sequences in each micro-batch, in order.
    static func microBatchSizes(depth: Int, jobs: Int, maxTokens: (Int) -> Int) throws -> [Int] {
        var scheduler = Scheduler(
            configuration: Scheduler.Configuration(pipelineDepth: depth, contextLength: 64)
        )
        var sizes: [Int] = []
        var stages: [(UInt64, Int)] = []
        var tokens: [(UInt64, Int)] = []
        func carryOut(_ directives: [Scheduler.Directive]) {
            for directive in directives {
                switch directive {
                case .forward(let id, let slices, _):
                    sizes.append(slices.count)
                    stages.append((id, slices.count))
                case .sampleTokens(let id, let rows, _): tokens.append((id, rows.count))
                default: break
                }
            }
        }
        var submitted = 0
        while submitted < jobs || !stages.isEmpty || !tokens.isEmpty {
            while submitted < jobs {
                submitted += 1
                let job = TextJob(
                    id: UInt64(submitted),
                    prompt: [.token(1), .token(2), .token(3)],
                    options: GenerationOptions(maxTokens: maxTokens(submitted))
                )
                carryOut(try scheduler.submit(job))
            }
            if !tokens.isEmpty {
                let (id, rows) = tokens.removeFirst()
                carryOut(try scheduler.sampled(requestID: id, tokens: Array(repeating: 5, count: rows)))
            } else if !stages.isEmpty {
                let (id, rows) = stages.removeFirst()
                carryOut(try scheduler.stageOutput(microBatch: id, lastRows: Matrix(rows: rows, columns: 4)))
            }
        }
        #expect(scheduler.activeJobs == 0)
        return sizes
    }

    /// Jobs arriving one at a time must not fix uneven groups for good (without lanes, eight jobs on two stages ran
    /// as micro-batches of 1, 1 and 6 in turn): once the first two, which went alone with nothing else to run, are
    /// answered, two lanes run four sequences each. Those two started a step early, so they also finish a step early.
    @Test func jobsArrivingOneByOneSettleIntoEvenMicroBatches() throws {
        let sizes = try Self.microBatchSizes(depth: 2, jobs: 8, maxTokens: { _ in 6 })
        let expected: [Int] = [1, 1] + Array(repeating: 4, count: 10) + [3, 3]
        #expect(sizes == expected)
        // Three lanes share eight sequences 3, 3, 2.
        let three = try Self.microBatchSizes(depth: 3, jobs: 8, maxTokens: { _ in 6 })
        #expect(three.dropFirst(3).dropLast(3).allSatisfy { $0 == 3 || $0 == 2 } && three.reduce(0, +) == 8 * 6)
    }

    /// When the jobs of one lane finish first, the others are spread over both lanes again.
    @Test func lanesAreEvenedOutWhenJobsFinish() throws {
        // Odd jobs (lane 0) stop after 2 tokens; even jobs (lane 1) run on to 10.
        let sizes = try Self.microBatchSizes(depth: 2, jobs: 8, maxTokens: { $0 % 2 == 1 ? 2 : 10 })
        #expect(sizes.reduce(0, +) == 48)  // 4 x 2 + 4 x 10 tokens
        // After the first rounds, the four long jobs run two by two on both lanes (job 2, a step ahead, ends alone).
        #expect(sizes.count == 22 && sizes[6..<20].allSatisfy { $0 == 2 })
    }

    @Test func aSequenceIsNeverInTwoMicroBatchesAndACFGPairTravelsTogether() throws {
        var scheduler = Scheduler(
            configuration: Scheduler.Configuration(pipelineDepth: 3, maxRows: 6, prefillChunk: 2, contextLength: 64)
        )
        var forwards: [[SequenceSlice]] = []
        for id in 1...2 {
            let job = TextJob(
                id: UInt64(id),
                prompt: Array(repeating: .token(5), count: 6),
                options: GenerationOptions(maxTokens: 2)
            )
            for case .forward(_, let slices, _) in try scheduler.submit(job) { forwards.append(slices) }
        }
        // Two sequences, each busy in one micro-batch: only two of the three slots fill.
        #expect(forwards.count == 2 && scheduler.microBatchesInFlight == 2)
        var pair = Scheduler(
            configuration: Scheduler.Configuration(pipelineDepth: 1, maxRows: 4, prefillChunk: 8, contextLength: 64)
        )
        let image = ImageJob(
            id: 9,
            prompt: [0, 5, 6, 8197],
            nullPrompt: [0, 7, 8197],
            patches: 2,
            guidance: 5,
            steps: 2,
            seed: 0
        )
        let directives = try pair.submit(image)
        guard case .forward(_, let slices, _) = directives.first else { Issue.record("no forward"); return }
        // Both members share the micro-batch, each within half of it.
        #expect(slices.count == 2 && slices.allSatisfy { $0.count == 2 })
    }
}
