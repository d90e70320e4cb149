import Checkpoint
import Engine
import Generation
import Heads
import ImageIO
import Tensor
import TestSupport
import Testing
import Tokenizer
import VQVAE

/// The scheduler carried out against real compute (stage splits, the LM head, the diffusion head): every job must
/// produce what it produces alone in one process, whatever the pipeline depth, chunking, company or stage losses;
/// and the greedy text jobs what transformers' `generate` produces.
@Suite struct SchedulerPipelineTests {
    static let directory = try! ModelDirectory(path: Fixtures.tinyOrthus)
    static let planner = try! JobPlanner(directory: directory)
    static let imagePrompt = "A red circle on the left of a blue square."
    static let interleavedPrompt = "Draw picture number 0 and tell me about it."

    /// Three text jobs (two greedy, one sampled), image to text, text to image and interleaved.
    static func jobs() throws -> [PlannedJob] {
        let prompts = try PromptGolden.all("tiny-orthus")
        let imageCodes = LogitMask(banned: [SpecialTokens().imageCodes])
        let picture = try PNGCodec.read(Fixtures.image("landscape-37x23"))
        let latents = try PictureCodec(directory: directory).encode(picture)
        let question = GenerationRequest(mode: .imageToText, prompt: "What is in the picture?", maxTokens: 12)
        let image = GenerationRequest(mode: .textToImage, prompt: imagePrompt, seed: 9, guidance: 5, steps: 20)
        let interleaved = GenerationRequest(
            mode: .interleaved,
            prompt: interleavedPrompt,
            maxTokens: 78,
            sampling: .greedy,
            seed: 5,
            steps: 20
        )
        return [
            .text(
                TextJob(
                    id: 1,
                    prompt: prompts["p64"]!.ids.map(StageInput.token),
                    options: GenerationOptions(maxTokens: 12, mask: imageCodes)
                )
            ),
            .text(
                TextJob(
                    id: 2,
                    prompt: prompts["p7"]!.ids.map(StageInput.token),
                    options: GenerationOptions(
                        maxTokens: 10,
                        sampling: SamplingParameters(temperature: 1, topK: 50),
                        seed: 3,
                        mask: imageCodes
                    )
                )
            ),
            .text(
                TextJob(
                    id: 3,
                    prompt: prompts["p1"]!.ids.map(StageInput.token),
                    options: GenerationOptions(maxTokens: 6, mask: imageCodes)
                )
            ),
            try planner.imageQuestionJob(id: 6, question, latents: latents),
            try planner.plan(id: 4, image),
            try planner.plan(id: 7, interleaved),
        ]
    }

    static func executor(_ configuration: Scheduler.Configuration, split: [Range<Int>]) throws -> LocalExecutor {
        try LocalExecutor(
            directory: directory,
            configuration: configuration,
            split: split,
            diffusionHead: try DiffusionHead(directory: directory)
        )
    }

    /// Runs the jobs together; with `losingAStageAt`, a stage (each in turn) is lost after each of those steps: its
    /// caches and the outputs not yet handled are gone, a fresh stage takes its place, and the scheduler replays.
    static func runTogether(
        split: [Range<Int>],
        configuration: Scheduler.Configuration,
        losingAStageAt losses: Set<Int> = []
    ) throws -> [UInt64: JobAnswer] {
        var executor = try executor(configuration, split: split)
        var updates: [LocalExecutor.Update] = []
        for job in try jobs() { updates += try executor.submit(job) }
        var steps = 0
        var lost = 0
        while !executor.isIdle {
            steps += 1
            if losses.contains(steps) {
                updates += try executor.replaceStage(lost % split.count)
                lost += 1
            }
            updates += try executor.step()
            #expect(executor.scheduler.microBatchesInFlight <= configuration.pipelineDepth)
        }
        #expect(lost == losses.count, "only \(lost) of \(losses.count) stage losses happened in \(steps) steps")
        #expect(executor.scheduler.activeJobs == 0 && executor.cachedSequences == 0)
        var answers: [UInt64: JobAnswer] = [:]
        var streamed: [UInt64: [Int]] = [:]
        for update in updates {
            switch update {
            case .token(let job, let token): streamed[job, default: []].append(token)
            case .patch: break
            case .finished(let job, let answer): answers[job] = answer
            }
        }
        #expect(answers.allSatisfy { (streamed[$0.key] ?? []) == $0.value.tokens })
        return answers
    }

    /// Each job alone, in one compute holding every layer.
    static let alone: [UInt64: JobAnswer] = {
        var answers: [UInt64: JobAnswer] = [:]
        let configuration = Scheduler.Configuration(pipelineDepth: 1, contextLength: 512)
        for job in try! jobs() {
            var executor = try! executor(configuration, split: [0..<4])
            for case .finished(let id, let answer) in try! executor.submit(job) + executor.runUntilIdle() {
                answers[id] = answer
            }
        }
        return answers
    }()

    @Test func aGreedyJobAloneGivesTransformersTokens() throws {
        let prompts = try PromptGolden.all("tiny-orthus")
        #expect(Self.alone[1]?.tokens == Array(prompts["p64"]!.greedy32.prefix(12)))
        #expect(Self.alone[3]?.tokens == Array(prompts["p1"]!.greedy32.prefix(6)))
        #expect(Self.alone[4]?.pieces.count == 1 && Self.alone[4]?.reason == .imageComplete)
        #expect(Self.alone[7]?.pieces.contains { if case .image = $0 { true } else { false } } == true)
    }

    @Test(arguments: [
        ([0..<4], 1, 64, 256, []), ([0..<2, 2..<4], 2, 16, 24, []), ([0..<1, 1..<3, 3..<4], 3, 16, 24, []),
        ([0..<1, 1..<3, 3..<4], 3, 5, 7, []),
        // Stages lost at many points (mid-prompt, awaiting tokens or patches, pairs split) and replayed.
        ([0..<2, 2..<4], 2, 16, 24, [3, 10, 25, 60, 61, 140, 230]),
        ([0..<1, 1..<3, 3..<4], 3, 5, 7, [1, 7, 8, 30, 99, 200, 201, 202]),
    ])
    func concurrentJobsGiveWhatEachGivesAloneOnAnyPipeline(
        split: [Range<Int>],
        depth: Int,
        chunk: Int,
        rows: Int,
        losses: [Int]
    ) throws {
        let answers = try Self.runTogether(
            split: split,
            configuration: Scheduler.Configuration(
                pipelineDepth: depth,
                maxRows: rows,
                prefillChunk: chunk,
                contextLength: 512
            ),
            losingAStageAt: Set(losses)
        )
        #expect(answers.count == Self.alone.count)
        for (job, answer) in Self.alone { #expect(answers[job] == answer, "job \(job)") }
    }
}
