import Checkpoint
import Engine
import Generation
import Heads
import Model
import Tensor
import TestSupport
import Testing

/// Logits and greedy decoding against transformers' ChameleonForConditionalGeneration on the same weights.
@Suite struct LogitsGoldenTests {
    static let cases: [(String, String)] = [
        ("tiny-orthus", "p1"), ("tiny-orthus", "p7"), ("tiny-orthus", "p64"),
        ("tiny-chameleon-gqa", "p7"), ("tiny-chameleon-gqa", "p20"),
    ]

    static func path(_ model: String) -> String {
        model == "tiny-orthus" ? Fixtures.tinyOrthus : Fixtures.tinyChameleonGQA
    }

    @Test(arguments: cases)
    func logitsMatchTransformersAtEveryPosition(model: String, prompt: String) throws {
        let text = try TextModel(directory: ModelDirectory(path: Self.path(model)))
        let ids = try PromptGolden.all(model)[prompt]!.ids
        let (logits, _) = try text.logits(ids: ids)
        let golden = try Fixtures.golden("\(model)-\(prompt)-logits")
        #expect(golden.shape == [ids.count, text.configuration.vocabSize])
        let error = Fixtures.relativeError(logits.storage, golden.values)
        #expect(error <= 1e-3, "max |Δ| / max |logit| = \(error)")  // the bound
        #expect(error <= 1e-6, "max |Δ| / max |logit| = \(error)")  // measured: <= 5.2e-7
    }

    @Test(arguments: cases)
    func greedyDecodingWithTheKVCacheEqualsTransformersGenerate(model: String, prompt: String) throws {
        let directory = try ModelDirectory(path: Self.path(model))
        let golden = try PromptGolden.all(model)[prompt]!
        // transformers' Chameleon forward masks the image-code ids; nothing stops early.
        let special = SpecialTokens.resolve(directory.configuration, nil)
        let options = GenerationOptions(maxTokens: 32, mask: LogitMask(banned: [special.imageCodes]))
        var executor = try LocalExecutor(
            directory: directory,
            configuration: Scheduler.Configuration(
                pipelineDepth: 1,
                contextLength: directory.configuration.contextLength
            )
        )
        let job = TextJob(id: 1, prompt: golden.ids.map(StageInput.token), options: options)
        let updates = try executor.submit(.text(job)) + executor.runUntilIdle()
        #expect(
            updates.last
                == .finished(job: 1, answer: JobAnswer(tokens: golden.greedy32, pieces: [], reason: .maxTokens))
        )
    }
}
