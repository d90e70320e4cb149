import Foundation
import TestSupport
import Testing

@testable import Checkpoint

@Suite struct ConfigurationTests {
    @Test func thePublishedKeysDecode() throws {
        let c = try OrthusConfiguration.load(path: Fixtures.tinyOrthus + "/config.json")
        #expect(c.hiddenSize == 32 && c.layerCount == 4 && c.headCount == 4 && c.keyValueHeads == 4)
        #expect(c.imageTokenID == 8711 && c.boiTokenID == 8197 && c.eoiTokenID == 8196)
        #expect(c.vqConfig?.patchesPerImage == 16 && c.vqConfig?.latentDim == 8)
        #expect(c.ropeBase == 10000 && c.normEps == 1e-5)
    }

    @Test func malformedJSONIsReportedWithThePath() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try scratch.write("config.json", Data("{\"hidden_size\": 32,".utf8))
        let error = try #require(throws: CheckpointError.self) { _ = try ModelDirectory(path: scratch.path) }
        #expect("\(error)".contains("config.json") && "\(error)".contains("not valid JSON"))
    }

    @Test func aMissingKeyIsNamed() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try scratch.editConfig { $0["num_hidden_layers"] = nil }
        let error = try #require(throws: CheckpointError.self) { _ = try ModelDirectory(path: scratch.path) }
        #expect("\(error)".contains("missing key 'num_hidden_layers'"))
    }

    @Test func aValueOfTheWrongTypeIsNamed() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try scratch.editConfig { $0["hidden_size"] = "thirty-two" }
        let error = try #require(throws: CheckpointError.self) { _ = try ModelDirectory(path: scratch.path) }
        #expect("\(error)".contains("hidden_size"))
    }

    /// (key, new value as JSON text)
    @Test(arguments: [
        ("num_attention_heads", "5"), ("num_key_value_heads", "3"), ("vocab_size", "0"), ("rope_theta", "-1.0"),
        ("hidden_act", "\"gelu\""), ("swin_norm", "true"), ("image_token_id", "100000"),
    ])
    func anInvalidOrUnsupportedValueIsNamed(key: String, json: String) throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        let value = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        try scratch.editConfig { $0[key] = value }
        let error = try #require(throws: CheckpointError.self) { _ = try ModelDirectory(path: scratch.path) }
        #expect("\(error)".contains(key), "\(error)")
    }

    @Test func ropeScalingIsRefused() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try scratch.editConfig { $0["rope_scaling"] = ["type": "linear", "factor": 2.0] }
        #expect(throws: CheckpointError.unsupportedConfig(key: "rope_scaling", detail: "Chameleon uses plain RoPE")) {
            _ = try ModelDirectory(path: scratch.path)
        }
    }

    @Test func aMissingConfigIsNamed() throws {
        let scratch = try TemporaryModel(copying: Fixtures.tinyOrthus)
        try FileManager.default.removeItem(atPath: scratch.file("config.json"))
        #expect(throws: CheckpointError.fileNotFound(path: scratch.file("config.json"))) {
            _ = try ModelDirectory(path: scratch.path)
        }
    }
}
