import Checkpoint
import Foundation
import Tensor

/// A random-weight Orthus checkpoint in the published layout, written at bench time so nothing large is committed:
/// `config.json`, one safetensors shard per decoder layer plus one for the rest, the shard index, and
/// `tokenizer.json`. The backbone and the diffusion head take the sizes asked for; the tokenizer, vocabulary, special
/// ids, `codebook_in` and the (small) VQ-VAE are copied from a template checkpoint (the bundled tiny model).
public struct BenchModel: Sendable {
    public struct Size: Sendable, Codable, Equatable {
        public var hidden: Int
        public var layers: Int
        public var heads: Int
        public var intermediate: Int
        /// The diffusion head's width (Orthus-7B: 1536), with 3 residual blocks.
        public var headWidth: Int
        public var dtype: String

        public init(hidden: Int, layers: Int, heads: Int, intermediate: Int, headWidth: Int, dtype: String) {
            self.hidden = hidden
            self.layers = layers
            self.heads = heads
            self.intermediate = intermediate
            self.headWidth = headWidth
            self.dtype = dtype
        }
    }

    public let folder: String
    public let size: Size

    /// Writes the checkpoint to `folder` (replacing what is there).
    public static func generate(_ size: Size, template: String, folder: String) throws -> BenchModel {
        guard let dtype = DType(rawValue: size.dtype.uppercased()) else {
            throw BenchError("unknown dtype \(size.dtype): use F32, BF16 or F16")
        }
        guard size.hidden % size.heads == 0, size.hidden % 16 == 0 else {
            throw BenchError("hidden \(size.hidden) must be a multiple of 16 and of the head count \(size.heads)")
        }
        let manager = FileManager.default
        try? manager.removeItem(atPath: folder)  // an earlier generated model, if any; writing below reports
        try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = try ModelDirectory(path: template)

        // config.json: the template's, with the backbone's sizes replaced.
        let configData = try Data(contentsOf: URL(fileURLWithPath: template + "/config.json"))
        guard var config = try JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
            throw BenchError("\(template)/config.json is not a JSON object")
        }
        config["hidden_size"] = size.hidden
        config["intermediate_size"] = size.intermediate
        config["num_hidden_layers"] = size.layers
        config["num_attention_heads"] = size.heads
        config["num_key_value_heads"] = size.heads
        config["max_position_embeddings"] = 4096
        config["torch_dtype"] = dtype == .float32 ? "float32" : dtype == .bfloat16 ? "bfloat16" : "float16"
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
            .write(to: URL(fileURLWithPath: folder + "/config.json"))
        try manager.copyItem(atPath: template + "/tokenizer.json", toPath: folder + "/tokenizer.json")

        var configuration = source.configuration
        configuration.hiddenSize = size.hidden
        configuration.intermediateSize = size.intermediate
        configuration.layerCount = size.layers
        configuration.headCount = size.heads
        configuration.kvHeadCount = size.heads
        let manifest = TensorManifest(configuration)
        var random = SplitMix(seed: 0x0b7e_57ed)
        var weightMap: [String: String] = [:]
        func shard(_ name: String, _ items: [SafetensorsWriter.Item]) throws {
            try SafetensorsWriter.write(items, to: folder + "/" + name)
            for item in items { weightMap[item.name] = name }
        }
        func tensor(_ name: String, _ shape: [Int], fill: Float? = nil) -> SafetensorsWriter.Item {
            let count = shape.reduce(1, *)
            // Uniform with the variance of 1/fan-in keeps activations of random layers near unit size.
            let bound = (3 / Float(shape.last ?? 1)).squareRoot()
            let values = fill.map { [Float](repeating: $0, count: count) } ?? random.uniform(count, bound: bound)
            return SafetensorsWriter.Item(name: name, shape: shape, values: values, dtype: dtype)
        }

        for layer in 0..<size.layers {
            let names = manifest.layerNames(layer)
            let items = manifest.layer(layer).sorted { $0.key < $1.key }.map { name, shape in
                switch name {
                case names.inputNorm, names.postNorm, names.qNormWeight, names.kNormWeight: tensor(name, shape, fill: 1)
                case names.qNormBias, names.kNormBias: tensor(name, shape, fill: 0)
                default: tensor(name, shape)
                }
            }
            try shard(String(format: "model-layer-%05d.safetensors", layer), items)
        }
        var rest = [
            tensor(TensorManifest.embeddings, manifest.embeddingShape),
            tensor(TensorManifest.finalNorm, manifest.finalNormShape, fill: 1),
            tensor(TensorManifest.lmHead, manifest.lmHeadShape),
        ]
        let width = size.headWidth
        let latent = configuration.vqConfig?.latentDim ?? 256
        typealias Head = TensorManifest.DiffusionHeadNames
        /// A linear layer's weight and bias (random where the fill is nil), in that order.
        func linear(
            _ name: String,
            _ shape: [Int],
            weightFill: Float? = nil,
            biasFill: Float? = 0
        )
            -> [SafetensorsWriter.Item]
        {
            [tensor(name + ".weight", shape, fill: weightFill), tensor(name + ".bias", [shape[0]], fill: biasFill)]
        }
        rest += linear(Head.time0, [width, 256], biasFill: nil) + linear(Head.time2, [width, width], biasFill: nil)
        rest += linear(Head.condition, [width, size.hidden], biasFill: nil)
        rest += linear(Head.inputProjection, [width, latent], biasFill: nil)
        rest +=
            linear(Head.final, [latent, width], weightFill: 0.001) + linear(Head.finalModulation, [2 * width, width])
        for block in 0..<3 {
            let names = Head.block(block)
            rest += [tensor(names.norm + ".weight", [width], fill: 1), tensor(names.norm + ".bias", [width], fill: 0)]
            rest += linear(names.mlp0, [width, width]) + linear(names.mlp2, [width, width])
            rest += linear(names.modulation, [3 * width, width])
        }
        // The template's VQ-VAE and codebook_in, as they are.
        for name in source.tensorNames
        where name.hasPrefix(TensorManifest.VQNames.prefix) || name == TensorManifest.codebookIn {
            let entry = try source.entry(name)
            let loaded = try source.load(name, shape: entry.shape)
            rest.append(SafetensorsWriter.Item(name: name, shape: entry.shape, values: loaded.values, dtype: dtype))
        }
        try shard("model-rest.safetensors", rest)

        let index: [String: Any] = ["metadata": ["total_size": 0], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
            .write(to: URL(fileURLWithPath: folder + "/" + ModelDirectory.indexFileName))
        return BenchModel(folder: folder, size: size)
    }
}

/// A small, fast, seeded generator for random weights.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` values uniform in [-bound, bound).
    mutating func uniform(_ count: Int, bound: Float) -> [Float] {
        (0..<count).map { _ in (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * bound }
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
