import Checkpoint
import Generation
import Model
import Tensor
import TestSupport
import Testing

@Suite struct SoftEmbeddingTests {
    @Test func latentsEmbedAsThePyTorchReferenceComputesThem() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let stack = try LayerStack(directory: directory, layers: 0..<1)
        let latents = try Fixtures.golden("soft-latents")
        let golden = try Fixtures.golden("soft-embeddings")
        let width = latents.shape[1]
        let inputs = (0..<latents.shape[0]).map {
            StageInput.latent(Array(latents.values[($0 * width)..<(($0 + 1) * width)]))
        }
        let embedded = try stack.embed(inputs)
        #expect(Fixtures.relativeError(embedded.storage, golden.values) <= 1e-4)
    }

    @Test func tokensAndLatentsMixInOneCallInOrder() throws {
        let stack = try LayerStack(directory: ModelDirectory(path: Fixtures.tinyOrthus), layers: 0..<1)
        let latent = Array(try Fixtures.golden("soft-latents").values[0..<8])
        let mixed = try stack.embed([.token(8197), .latent(latent), .token(5)])
        #expect(mixed.rows(0..<1) == (try stack.embed([8197])))
        #expect(mixed.rows(1..<2) == (try stack.embed([.latent(latent)])))
        #expect(mixed.rows(2..<3) == (try stack.embed([5])))
    }

    @Test func aPlainChameleonCheckpointRefusesLatentsClearly() throws {
        let stack = try LayerStack(directory: ModelDirectory(path: Fixtures.tinyChameleonGQA), layers: 0..<1)
        #expect(throws: ModelError.noSoftEmbedding) { _ = try stack.embed([.latent([Float](repeating: 0, count: 8))]) }
    }

    @Test func aLatentOfTheWrongWidthIsRefused() throws {
        let stack = try LayerStack(directory: ModelDirectory(path: Fixtures.tinyOrthus), layers: 0..<1)
        #expect(throws: ModelError.latentWidth(found: 3, expected: 8)) { _ = try stack.embed([.latent([1, 2, 3])]) }
    }
}
