import Checkpoint
import Foundation
import Model
import Tensor
import TestSupport
import Testing

/// The backbone against transformers' ChameleonForConditionalGeneration on the same weights.
@Suite struct BackboneGoldenTests {
    static func run(_ model: String, prompt: String) throws -> (hidden: Matrix, ids: [Int]) {
        let directory = try ModelDirectory(
            path: model == "tiny-orthus" ? Fixtures.tinyOrthus : Fixtures.tinyChameleonGQA
        )
        let stack = try LayerStack(directory: directory, layers: 0..<directory.configuration.layerCount)
        let ids = try PromptGolden.all(model)[prompt]!.ids
        var x = try stack.embed(ids)
        var caches = [stack.makeCache()]
        try stack.forward(&x, rowCounts: [ids.count], caches: &caches)
        return (x, ids)
    }

    @Test(arguments: [
        ("tiny-orthus", "p1"), ("tiny-orthus", "p7"), ("tiny-orthus", "p64"),
        ("tiny-chameleon-gqa", "p7"), ("tiny-chameleon-gqa", "p20"),
    ])
    func finalHiddenStatesMatchTransformersAtEveryPosition(model: String, prompt: String) throws {
        let (hidden, ids) = try Self.run(model, prompt: prompt)
        let golden = try Fixtures.golden("\(model)-\(prompt)-hidden")
        #expect(golden.shape == [ids.count, hidden.columns])
        let error = Fixtures.relativeError(hidden.storage, golden.values)
        #expect(error <= 1e-5, "relative error \(error)")  // measured: <= 7e-7
    }
}
