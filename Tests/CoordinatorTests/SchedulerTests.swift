import Checkpoint
import Engine
import Heads
import Model
import Stage
import Tensor
import TestSupport
import Testing

@testable import Coordinator

/// The scheduler driven against real stage compute and the real LM head: every job must produce exactly the tokens
/// of the single-process engine, whatever the pipeline depth, chunking or company.
@Suite struct SchedulerTests {
    static let directory = try! ModelDirectory(path: Fixtures.tinyOrthus)

    static func jobs() throws -> [TextJob] {
        let prompts = try PromptGolden.all("tiny-orthus")
        let imageCodes = LogitMask(banned: [SpecialTokens().imageCodes])
        return [
            TextJob(id: 1, prompt: prompts["p64"]!.ids, maxTokens: 12, mask: imageCodes),
            TextJob(
                id: 2,
                prompt: prompts["p7"]!.ids,
                maxTokens: 10,
                sampling: SamplingParameters(temperature: 1, topK: 50),
                seed: 3,
                mask: imageCodes
            ),
            TextJob(id: 3, prompt: prompts["p1"]!.ids, maxTokens: 6, mask: imageCodes),
        ]
    }

    /// Carries out the directives: forwards run through the stage chain, token requests through the LM head; the
    /// results come back in the order they were produced, as a pipeline returns them.
    static func runCluster(split: [Range<Int>], configuration: Scheduler.Configuration) throws -> [UInt64: [Int]] {
        var stages = try split.map { try StageCompute(directory: directory, layers: $0) }
        let head = try LMHead(directory: directory)
        var scheduler = Scheduler(configuration: configuration)
        enum Event { case output(UInt64, Matrix), sampled(UInt64, [Int]) }
        var events: [Event] = []
        var finished: [UInt64: [Int]] = [:]
        var streamed: [UInt64: [Int]] = [:]
        func carryOut(_ directives: [Scheduler.Directive]) throws {
            for directive in directives {
                switch directive {
                case .forward(let id, let slices, let inputs):
                    #expect(scheduler.microBatchesInFlight <= configuration.pipelineDepth)
                    var output = try stages[0].run(slices, input: .inputs(inputs))
                    for i in 1..<stages.count { output = try stages[i].run(slices, input: .hidden(output)) }
                    events.append(.output(id, StageCompute.lastRows(output, slices: slices)))
                case .sampleTokens(let id, let rows, let hidden):
                    let logits = head.logits(hidden)
                    let tokens = rows.enumerated().map { index, row in
                        Sampler.choose(
                            logits: Array(logits.storage[(index * logits.columns)..<((index + 1) * logits.columns)]),
                            mask: row.mask,
                            sampling: row.sampling,
                            seed: row.seed,
                            counter: row.counter
                        )
                    }
                    events.append(.sampled(id, tokens))
                case .token(let job, let token): streamed[job, default: []].append(token)
                case .finished(let job, let tokens, _): finished[job] = tokens
                case .release(let ids): for i in stages.indices { stages[i].release(ids) }
                }
            }
        }
        for job in try jobs() { try carryOut(try scheduler.submit(job)) }
        while !events.isEmpty {
            switch events.removeFirst() {
            case .output(let id, let rows): try carryOut(try scheduler.stageOutput(microBatch: id, lastRows: rows))
            case .sampled(let id, let tokens): try carryOut(try scheduler.sampled(requestID: id, tokens: tokens))
            }
        }
        #expect(streamed == finished)
        #expect(scheduler.activeJobs == 0 && stages.allSatisfy { $0.sequenceCount == 0 })
        return finished
    }

    @Test(arguments: [
        ([0..<4], 1, 64, 256), ([0..<2, 2..<4], 2, 16, 24), ([0..<1, 1..<3, 3..<4], 3, 16, 24),
        ([0..<1, 1..<3, 3..<4], 3, 5, 7),
    ])
    func concurrentJobsProduceTheSingleProcessTokensOnAnyPipeline(
        split: [Range<Int>],
        depth: Int,
        chunk: Int,
        rows: Int
    ) throws {
        let text = try TextModel(directory: Self.directory)
        let results = try Self.runCluster(
            split: split,
            configuration: Scheduler.Configuration(
                pipelineDepth: depth,
                maxRows: rows,
                prefillChunk: chunk,
                contextLength: 512
            )
        )
        for job in try Self.jobs() {
            let single = try text.generate(
                prompt: job.prompt,
                options: GenerationOptions(
                    maxTokens: job.maxTokens,
                    sampling: job.sampling,
                    seed: job.seed,
                    mask: job.mask
                )
            )
            #expect(results[job.id] == single.tokens, "job \(job.id)")
        }
    }

    @Test func badInputIsRefusedByName() throws {
        var scheduler = Scheduler(configuration: Scheduler.Configuration(pipelineDepth: 2, contextLength: 8))
        #expect(throws: Scheduler.Refusal.emptyPrompt(job: 1)) {
            try scheduler.submit(TextJob(id: 1, prompt: [], maxTokens: 1))
        }
        #expect(throws: Scheduler.Refusal.promptTooLong(job: 2, tokens: 9, context: 8)) {
            try scheduler.submit(TextJob(id: 2, prompt: Array(repeating: 5, count: 9), maxTokens: 1))
        }
        _ = try scheduler.submit(TextJob(id: 3, prompt: [0, 5], maxTokens: 1))
        #expect(throws: Scheduler.Refusal.duplicateJob(3)) {
            try scheduler.submit(TextJob(id: 3, prompt: [0], maxTokens: 1))
        }
        #expect(throws: Scheduler.Refusal.unknownMicroBatch(99)) {
            try scheduler.stageOutput(microBatch: 99, lastRows: Matrix(rows: 1, columns: 4))
        }
        #expect(throws: Scheduler.Refusal.rowCount(expected: 1, found: 2)) {
            try scheduler.stageOutput(microBatch: 1, lastRows: Matrix(rows: 2, columns: 4))
        }
        #expect(throws: Scheduler.Refusal.unknownRequest(7)) { try scheduler.sampled(requestID: 7, tokens: [1]) }
    }

    @Test func aSequenceIsNeverInTwoMicroBatchesAndTheDepthIsKept() throws {
        var scheduler = Scheduler(
            configuration: Scheduler.Configuration(pipelineDepth: 3, prefillChunk: 2, contextLength: 64)
        )
        var forwards: [[SequenceSlice]] = []
        for id in 1...2 {
            for case .forward(_, let slices, _) in try scheduler.submit(
                TextJob(id: UInt64(id), prompt: Array(repeating: 5, count: 6), maxTokens: 2)
            ) {
                forwards.append(slices)
            }
        }
        // Two sequences, each busy in one micro-batch: only two of the three slots fill.
        #expect(forwards.count == 2 && scheduler.microBatchesInFlight == 2)
        #expect(Set(forwards.flatMap { $0.map(\.sequenceID) }).count == forwards.flatMap { $0 }.count)
    }
}
