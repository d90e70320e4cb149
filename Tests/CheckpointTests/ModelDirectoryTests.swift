import Foundation
import Tensor
import TestSupport
import Testing

@testable import Checkpoint

@Suite struct ModelDirectoryTests {
    @Test func aShardedCheckpointListsEveryTensorOfTheIndex() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        #expect(Set(directory.weightMap.values).count == 2)
        #expect(directory.tensorNames.contains("model.codebook_in.weight"))
        #expect(directory.tensorNames.contains("mlp_head.final_layer.linear.weight"))
        #expect(directory.tensorNames.contains("model.vqmodel.decoder.conv_out.weight"))
    }

    @Test func aSingleFileCheckpointWithoutOrthusPartsOpens() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyChameleonGQA)
        #expect(directory.configuration.keyValueHeads == 2)
        #expect(!directory.tensorNames.contains { $0.hasPrefix("mlp_head.") })
        #expect(try !CheckpointSummary(directory).hasOrthusParts)
    }

    @Test func onlyTheShardsHoldingRequestedTensorsAreRead() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        // Corrupt the second shard: layer 0 lives in the first, so loading it must still work.
        try scratch.write("model-00002-of-00002.safetensors", Data("garbage".utf8))
        let directory = try ModelDirectory(path: scratch.path)
        let names = TensorManifest(directory.configuration).layer(0)
        #expect(try directory.load(names).count == names.count)
        #expect(throws: CheckpointError.self) { _ = try directory.load("lm_head.weight", shape: [9472, 32]) }
    }

    @Test func aMissingTensorIsNamed() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try scratch.editConfig { _ in }
        var index =
            try JSONSerialization.jsonObject(with: scratch.read("model.safetensors.index.json")) as! [String: Any]
        var map = index["weight_map"] as! [String: String]
        map["model.layers.1.mlp.up_proj.weight"] = nil
        index["weight_map"] = map
        try scratch.write("model.safetensors.index.json", JSONSerialization.data(withJSONObject: index))
        let directory = try ModelDirectory(path: scratch.path)
        #expect(throws: CheckpointError.missingTensor(name: "model.layers.1.mlp.up_proj.weight")) {
            _ = try directory.load(TensorManifest(directory.configuration).layer(1))
        }
    }

    @Test func aMisShapedTensorIsNamedWithBothShapes() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyChameleonGQA)
        // Rewrite the single file with one projection transposed.
        let file = try SafetensorsFile(path: scratch.file("model.safetensors"))
        var items: [SafetensorsWriter.Item] = []
        for (name, entry) in file.entries {
            let shape = name == "model.layers.0.mlp.down_proj.weight" ? Array(entry.shape.reversed()) : entry.shape
            items.append(.init(name: name, shape: shape, values: try file.floats(name), dtype: entry.dtype!))
        }
        try SafetensorsWriter.write(items, to: scratch.file("model.safetensors"))
        let directory = try ModelDirectory(path: scratch.path)
        #expect(
            throws: CheckpointError.shapeMismatch(
                name: "model.layers.0.mlp.down_proj.weight",
                expected: [32, 64],
                found: [64, 32]
            )
        ) {
            _ = try directory.load(TensorManifest(directory.configuration).layer(0))
        }
    }

    @Test func anIndexPointingAtAMissingShardIsNamed() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try FileManager.default.removeItem(atPath: scratch.file("model-00002-of-00002.safetensors"))
        #expect(throws: CheckpointError.fileNotFound(path: scratch.file("model-00002-of-00002.safetensors"))) {
            _ = try ModelDirectory(path: scratch.path)
        }
    }

    @Test func aFolderWithoutWeightsIsRefused() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyChameleonGQA)
        try FileManager.default.removeItem(atPath: scratch.file("model.safetensors"))
        let error = try #require(throws: CheckpointError.self) { _ = try ModelDirectory(path: scratch.path) }
        #expect("\(error)".contains("model.safetensors"))
    }

    @Test func stageMemoryAddsEmbeddingsToTheFirstStageAndKVToEach() throws {
        let summary = try CheckpointSummary(ModelDirectory(path: Fixtures.tinyOrthus))
        let stages = try summary.stages([0..<1, 1..<4])
        #expect(stages[0].parameters == 9472 * 32 + 8192 * 8 + summary.byComponent[.layer(0)]!.parameters)
        #expect(stages[1].kvBytesPerToken == 3 * 2 * 32 * 4)
        // The fixture is bf16: the projections a layer reads through `loadWeights` stay 2 bytes a parameter, packed
        // as q|k|v, o, gate|up and down with the outputs of each padded to a multiple of 64; its norms are widened
        // to 4.
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let manifest = TensorManifest(directory.configuration)
        var expected = 0
        for layer in 1..<4 {
            let names = manifest.layerNames(layer)
            let shapes = manifest.layer(layer)
            let matrices: Set = [names.q, names.k, names.v, names.o, names.gate, names.up, names.down]
            for (name, shape) in shapes where !matrices.contains(name) {
                #expect(try directory.entry(name).dtypeName == "BF16")
                expected += shape.reduce(1, *) * 4
            }
            for stack in [[names.q, names.k, names.v], [names.o], [names.gate, names.up], [names.down]] {
                let outputs = stack.reduce(0) { $0 + shapes[$1]![0] }
                expected += (outputs + 63) / 64 * 64 * shapes[stack[0]]![1] * 2
            }
        }
        // The last stage also holds the final norm, widened.
        #expect(stages[1].residentBytes == expected + summary.byComponent[.finalNorm]!.parameters * 4)
        #expect(throws: CheckpointError.self) { _ = try summary.stages([0..<1, 2..<4]) }
        #expect(throws: CheckpointError.self) { _ = try summary.stages([0..<2]) }
    }
}
