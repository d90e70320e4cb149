import Checkpoint
import Engine
import Heads
import ImageIO
import Model
import Stage
import Tensor
import TestSupport
import Testing
import Tokenizer

@testable import Coordinator

/// The scheduler driven against real stage compute, the real LM head and the real diffusion head: every job must
/// produce exactly what the single-process engine produces, whatever the pipeline depth, chunking or company.
@Suite struct SchedulerTests {
    static let directory = try! ModelDirectory(path: Fixtures.tinyOrthus)
    static let tokenizer = try! Tokenizer(path: Fixtures.tokenizer)
    static let imagePrompt = "A red circle on the left of a blue square."

    static func textJobs() throws -> [TextJob] {
        let prompts = try PromptGolden.all("tiny-orthus")
        let imageCodes = LogitMask(banned: [SpecialTokens().imageCodes])
        return [
            TextJob(
                id: 1,
                prompt: prompts["p64"]!.ids.map(StageInput.token),
                options: GenerationOptions(maxTokens: 12, mask: imageCodes)
            ),
            TextJob(
                id: 2,
                prompt: prompts["p7"]!.ids.map(StageInput.token),
                options: GenerationOptions(
                    maxTokens: 10,
                    sampling: SamplingParameters(temperature: 1, topK: 50),
                    seed: 3,
                    mask: imageCodes
                )
            ),
            TextJob(
                id: 3,
                prompt: prompts["p1"]!.ids.map(StageInput.token),
                options: GenerationOptions(maxTokens: 6, mask: imageCodes)
            ),
        ]
    }

    static func imageJob() throws -> ImageJob {
        let special = SpecialTokens()
        return ImageJob(
            id: 4,
            prompt: try TextModel.promptIDs(imagePrompt, tokenizer: tokenizer, special: special) + [special.boi],
            nullPrompt: try TextModel.promptIDs("Generate an image.", tokenizer: tokenizer, special: special) + [
                special.boi
            ],
            patches: 16,
            guidance: 5,
            steps: 20,
            seed: 9
        )
    }

    /// Image-to-text: the prompt carries the VQ encoder's latents at the `<image>` positions.
    static func imageQuestionJob() throws -> TextJob {
        let orthus = try OrthusModel(directory: directory, tokenizer: tokenizer)
        let picture = try PNGCodec.read(Fixtures.image("landscape-37x23"))
        let mask = orthus.text.textOnlyMask(orthus.special, tokenizer: tokenizer)
        return TextJob(
            id: 6,
            prompt: try orthus.imageQuestionInputs(picture, question: "What is in the picture?"),
            options: GenerationOptions(
                maxTokens: 12,
                mask: mask,
                stopIDs: [orthus.special.sep, orthus.special.eos]
            )
        )
    }

    static let interleavedPrompt = "Draw picture number 0 and tell me about it."

    static func interleavedJob() throws -> InterleavedJob {
        let orthus = try OrthusModel(directory: directory, tokenizer: tokenizer)
        let special = orthus.special
        return InterleavedJob(
            id: 7,
            prompt: try TextModel.promptIDs(interleavedPrompt, tokenizer: tokenizer, special: special),
            nullPrompt: try TextModel.promptIDs("generate images", tokenizer: tokenizer, special: special) + [
                special.boi
            ],
            maxTokens: 78,
            sampling: .greedy,
            seed: 5,
            mask: orthus.text.textOnlyMask(special, tokenizer: tokenizer),
            stopIDs: [special.sep, special.eos],
            boi: special.boi,
            eoi: special.eoi,
            patches: 16,
            guidance: 3,
            steps: 20
        )
    }

    struct Outcome {
        var texts: [UInt64: [Int]] = [:]
        var images: [UInt64: [[Float]]] = [:]
        var answers: [UInt64: [AnswerPiece]] = [:]
    }

    /// Carries out the directives: forwards run through the stage chain, token requests through the LM head, patch
    /// requests through the guided sampler; results come back in the order they were produced.
    /// With `losingAStageAt`, a stage is lost after each of those event counts (stages in turn): its caches and the
    /// outputs in flight are gone, a fresh stage takes its place, and the scheduler replays onto it.
    static func runCluster(
        split: [Range<Int>],
        configuration: Scheduler.Configuration,
        losingAStageAt losses: Set<Int> = []
    ) throws -> Outcome {
        var stages = try split.map { try StageCompute(directory: directory, layers: $0) }
        let head = try LMHead(directory: directory)
        let diffusion = try DiffusionHead(directory: directory)
        var scheduler = Scheduler(configuration: configuration)
        enum Event { case output(UInt64, Matrix), sampled(UInt64, [Int]), patch(UInt64, [Float]) }
        var events: [Event] = []
        var outcome = Outcome()
        var streamed: [UInt64: [Int]] = [:]
        func carryOut(_ directives: [Scheduler.Directive]) throws {
            for directive in directives {
                switch directive {
                case .forward(let id, let slices, let inputs):
                    #expect(scheduler.microBatchesInFlight <= configuration.pipelineDepth)
                    #expect(slices.reduce(0) { $0 + $1.count } <= configuration.maxRows)
                    var output = try stages[0].run(slices, input: .inputs(inputs))
                    for i in 1..<stages.count { output = try stages[i].run(slices, input: .hidden(output)) }
                    events.append(.output(id, StageCompute.lastRows(output, slices: slices)))
                case .sampleTokens(let id, let rows, let hidden):
                    let logits = head.logits(hidden)
                    let tokens = rows.enumerated().map { index, row in
                        row.choose(Array(logits.storage[(index * logits.columns)..<((index + 1) * logits.columns)]))
                    }
                    events.append(.sampled(id, tokens))
                case .samplePatch(let id, _, let image, let patch, let condition, let guidance, let steps, let seed):
                    let sampler = GuidedSampler(head: diffusion, steps: steps)
                    let noise = PatchNoise.gaussian(seed: seed, image: image, patch: patch, count: diffusion.latentDim)
                    let state = sampler.start(
                        noise: noise,
                        condition: Array(condition.storage[0..<condition.columns]),
                        unconditional: Array(condition.storage[condition.columns...]),
                        guidance: guidance
                    )
                    events.append(.patch(id, sampler.sample([state])[0]))
                case .token(let job, let token): streamed[job, default: []].append(token)
                case .patchDone: break
                case .finished(let job, let tokens, _): outcome.texts[job] = tokens
                case .finishedImage(let job, let latents): outcome.images[job] = latents
                case .finishedInterleaved(let job, let pieces): outcome.answers[job] = pieces
                case .release(let ids): for i in stages.indices { stages[i].release(ids) }
                }
            }
        }
        for job in try textJobs() + [try imageQuestionJob()] { try carryOut(try scheduler.submit(job)) }
        try carryOut(try scheduler.submit(try imageJob()))
        try carryOut(try scheduler.submit(try interleavedJob()))
        var handled = 0
        var lost = 0
        while !events.isEmpty {
            handled += 1
            if losses.contains(handled) {
                let index = lost % stages.count
                lost += 1
                stages[index] = try StageCompute(directory: directory, layers: split[index])
                events.removeAll { if case .output = $0 { true } else { false } }
                scheduler.suspend()
                try carryOut(scheduler.replay())
                if events.isEmpty { break }
            }
            switch events.removeFirst() {
            case .output(let id, let rows): try carryOut(try scheduler.stageOutput(microBatch: id, lastRows: rows))
            case .sampled(let id, let tokens): try carryOut(try scheduler.sampled(requestID: id, tokens: tokens))
            case .patch(let id, let latent): try carryOut(try scheduler.patchSampled(requestID: id, latent: latent))
            }
        }
        #expect(lost == losses.count, "only \(lost) of \(losses.count) stage losses happened in \(handled) events")
        #expect(outcome.texts.allSatisfy { streamed[$0.key] == $0.value })
        #expect(scheduler.activeJobs == 0 && stages.allSatisfy { $0.sequenceCount == 0 })
        return outcome
    }

    @Test(arguments: [
        ([0..<4], 1, 64, 256, []), ([0..<2, 2..<4], 2, 16, 24, []), ([0..<1, 1..<3, 3..<4], 3, 16, 24, []),
        ([0..<1, 1..<3, 3..<4], 3, 5, 7, []),
        // Stages lost at many points (mid-prompt, awaiting tokens or patches, pairs split) and replayed.
        ([0..<2, 2..<4], 2, 16, 24, [3, 10, 25, 60, 61, 140, 230]),
        ([0..<1, 1..<3, 3..<4], 3, 5, 7, [1, 7, 8, 30, 99, 200, 201, 202]),
    ])
    func concurrentTextAndImageJobsGiveTheSingleProcessOutputsOnAnyPipeline(
        split: [Range<Int>],
        depth: Int,
        chunk: Int,
        rows: Int,
        losses: [Int]
    ) throws {
        let outcome = try Self.runCluster(
            split: split,
            configuration: Scheduler.Configuration(
                pipelineDepth: depth,
                maxRows: rows,
                prefillChunk: chunk,
                contextLength: 512
            ),
            losingAStageAt: Set(losses)
        )
        let text = try TextModel(directory: Self.directory)
        for job in try Self.textJobs() {
            let single = try text.generate(prompt: job.prompt, options: job.options)
            #expect(outcome.texts[job.id] == single.tokens, "job \(job.id)")
        }
        let image = try Self.imageJob()
        let orthus = try OrthusModel(directory: Self.directory, tokenizer: Self.tokenizer)
        let answer = try orthus.imageToText(
            try PNGCodec.read(Fixtures.image("landscape-37x23")),
            question: "What is in the picture?",
            maxTokens: 12
        )
        #expect(outcome.texts[6] == answer.tokens)
        let single = try orthus.textToImage(
            prompt: Self.imagePrompt,
            options: ImageOptions(guidance: image.guidance, steps: image.steps, seed: image.seed)
        )
        #expect(outcome.images[image.id] == single)
        let interleaved = try Self.interleavedJob()
        let interleavedAnswer = try orthus.interleaved(
            prompt: Self.interleavedPrompt,
            maxTokens: interleaved.maxTokens,
            sampling: .greedy,
            image: ImageOptions(guidance: interleaved.guidance, steps: interleaved.steps, seed: interleaved.seed)
        )
        let expected: [AnswerPiece] = interleavedAnswer.map { piece in
            switch piece {
            case .text(let ids): .text(ids)
            case .image(let latents): .image(latents)
            }
        }
        #expect(expected.contains { if case .image = $0 { true } else { false } })
        #expect(outcome.answers[interleaved.id] == expected)
    }

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
        #expect(throws: Scheduler.Refusal.unknownRequest(8)) { try scheduler.patchSampled(requestID: 8, latent: [1]) }
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
