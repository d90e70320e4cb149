import Checkpoint
import Engine
import Generation
import Heads
import Model
import Tensor
import TestSupport
import Testing

/// Rows of different sequences in one forward call are computed as if each ran alone.
@Suite struct BatchingTests {
    let stack: LayerStack
    let ids: [Int]

    init() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        stack = try LayerStack(directory: directory, layers: 0..<directory.configuration.layerCount)
        ids = try PromptGolden.all("tiny-orthus")["p64"]!.ids
    }

    /// Runs `feeds` (one id list per call) through a fresh sequence alone; returns its cache and all output rows.
    func alone(_ feeds: [[Int]]) throws -> (KVCache, Matrix) {
        var caches = [stack.makeCache()]
        var out = Matrix(rows: 0, columns: stack.configuration.hiddenSize)
        for feed in feeds {
            var x = try stack.embed(feed)
            try stack.forward(&x, rowCounts: [feed.count], caches: &caches)
            out.append(rowsOf: x)
        }
        return (caches[0], out)
    }

    @Test func aBatchMixingDecodePrefillAndFreshSequencesGivesTheRowsOfEachRunAlone() throws {
        // A: 40 positions cached, then decodes 1 token. B: 9 cached, then prefills a 6-token chunk. C: new, 3 tokens.
        let aHistory = Array(ids[0..<40]), aStep = [ids[40]]
        let bHistory = Array(ids[10..<19]), bChunk = Array(ids[19..<25])
        let cFeed = Array(ids[50..<53])

        let (aCache, aRows) = try alone([aHistory])
        let (bCache, bRows) = try alone([bHistory])
        var caches = [aCache, bCache, stack.makeCache()]
        var x = try stack.embed(aStep + bChunk + cFeed)
        try stack.forward(&x, rowCounts: [1, 6, 3], caches: &caches)

        let aExpected = try alone([aHistory, aStep]).1.rows(40..<41)
        let bExpected = try alone([bHistory, bChunk]).1.rows(9..<15)
        let cExpected = try alone([cFeed]).1
        #expect(x.rows(0..<1) == aExpected)
        #expect(x.rows(1..<7) == bExpected)
        #expect(x.rows(7..<10) == cExpected)
        #expect(caches.map(\.count) == [41, 15, 3])
        #expect(aRows.rows == 40 && bRows.rows == 9)
    }

    @Test func prefillInChunksMatchesPrefillAtOnce() throws {
        let (_, whole) = try alone([ids])
        let (_, chunked) = try alone([Array(ids[0..<5]), Array(ids[5..<37]), Array(ids[37...])])
        let error = Fixtures.relativeError(chunked.storage, whole.storage)
        #expect(error <= 1e-5, "relative difference \(error)")
    }

    @Test func feedingPastTheContextLengthIsAnErrorNamingTheLimit() throws {
        var caches = [stack.makeCache()]
        let limit = stack.configuration.contextLength
        var x = try stack.embed([Int](repeating: 5, count: limit + 1))
        #expect(throws: ModelError.contextExceeded(needed: limit + 1, limit: limit)) {
            try stack.forward(&x, rowCounts: [limit + 1], caches: &caches)
        }
    }

    @Test func aTokenOutsideTheVocabularyIsAnError() throws {
        #expect(throws: ModelError.tokenOutOfRange(id: 99_999, vocabSize: stack.configuration.vocabSize)) {
            _ = try stack.embed([0, 99_999])
        }
    }

    @Test func aPromptLongerThanTheContextIsRefusedBeforeAnyCompute() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let limit = directory.configuration.contextLength
        var executor = try LocalExecutor(
            directory: directory,
            configuration: Scheduler.Configuration(pipelineDepth: 1, contextLength: limit)
        )
        let job = TextJob(
            id: 1,
            prompt: Array(repeating: .token(5), count: limit),
            options: GenerationOptions(maxTokens: 1)
        )
        #expect(throws: Scheduler.Refusal.promptTooLong(job: 1, tokens: limit, context: limit)) {
            _ = try executor.submit(.text(job))
        }
        #expect(executor.isIdle && executor.cachedSequences == 0)
    }
}

/// A stage loads only the tensors of its own layer range.
@Suite struct StageLoadingTests {
    @Test func aMiddleLayerRangeLoadsOnlyItsOwnLayersTensors() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        _ = try LayerStack(directory: directory, layers: 1..<3)
        let expected =
            TensorManifest(directory.configuration).layer(1).keys.sorted()
            + TensorManifest(directory.configuration).layer(2).keys.sorted()
        #expect(directory.namesLoaded == expected.sorted())
    }

    @Test func theFirstRangeAddsTheEmbeddingsAndTheLastTheFinalNorm() throws {
        let first = try ModelDirectory(path: Fixtures.tinyOrthus)
        _ = try LayerStack(directory: first, layers: 0..<1)
        #expect(first.namesLoaded.contains(TensorManifest.embeddings))
        #expect(!first.namesLoaded.contains(TensorManifest.finalNorm))
        #expect(!first.namesLoaded.contains { $0.hasPrefix("model.layers.1.") })

        let last = try ModelDirectory(path: Fixtures.tinyOrthus)
        _ = try LayerStack(directory: last, layers: 3..<4)
        #expect(last.namesLoaded.contains(TensorManifest.finalNorm))
        #expect(!last.namesLoaded.contains(TensorManifest.embeddings))
        #expect(!last.namesLoaded.contains(TensorManifest.lmHead))
    }

    @Test func aRangeOutsideTheModelIsRefused() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        #expect(throws: CheckpointError.self) { _ = try LayerStack(directory: directory, layers: 2..<9) }
    }
}
