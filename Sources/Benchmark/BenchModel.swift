import Checkpoint
import Foundation
import Tensor
import VQVAE

/// A random-weight Orthus checkpoint in the published layout, written at bench time so nothing large is committed:
/// `config.json`, one safetensors shard per decoder layer, one each for the embeddings and the LM head and one for
/// the rest, the shard index, and `tokenizer.json`. The backbone and the diffusion head take the sizes asked for; the
/// tokenizer and special ids come from a template checkpoint (the bundled tiny model), and so do the vocabulary,
/// `codebook_in` and the (small) VQ-VAE unless the size names its own (Orthus-7B's: 65536 and 512 pixels).
public struct BenchModel: Sendable {
    public struct Size: Sendable, Codable, Equatable {
        public var hidden: Int
        public var layers: Int
        public var heads: Int
        public var intermediate: Int
        /// The diffusion head's width (Orthus-7B: 1536), with 3 residual blocks.
        public var headWidth: Int
        public var dtype: String
        /// The vocabulary (rows of the embeddings and the LM head); nil: the template's.
        public var vocabulary: Int?
        /// The VQ-VAE: nil for the template's, or Chameleon's at 512 pixels (`VQConfiguration()`) with random weights.
        public var vq: VQConfiguration?

        public init(
            hidden: Int,
            layers: Int,
            heads: Int,
            intermediate: Int,
            headWidth: Int,
            dtype: String,
            vocabulary: Int? = nil,
            vq: VQConfiguration? = nil
        ) {
            self.hidden = hidden
            self.layers = layers
            self.heads = heads
            self.intermediate = intermediate
            self.headWidth = headWidth
            self.dtype = dtype
            self.vocabulary = vocabulary
            self.vq = vq
        }

        /// Orthus-7B's geometry: 32 layers, hidden 4096, 32 heads, MLP 11008, vocabulary 65536, the diffusion head
        /// 1536 x 3 and Chameleon's 512-pixel VQ-VAE, in bf16.
        public static let orthus7B = Size(
            hidden: 4096,
            layers: 32,
            heads: 32,
            intermediate: 11008,
            headWidth: 1536,
            dtype: "BF16",
            vocabulary: 65536,
            vq: .chameleon512
        )
    }

    public let folder: String
    public let size: Size

    /// The file that marks a finished generation, holding its size: a folder with it for the same size is reused.
    static let marker = "bench-size.json"

    /// The checkpoint of `size` in `folder`: the one there if an earlier run finished generating the same size
    /// (`reuse`), else generated anew, each shard streamed to disk a piece at a time.
    public static func generate(
        _ size: Size,
        template: String,
        folder: String,
        reuse: Bool = false
    ) throws -> BenchModel {
        if reuse, let data = FileManager.default.contents(atPath: folder + "/" + marker),
            let existing = try? JSONDecoder().decode(Size.self, from: data), existing == size  // unreadable: generate
        {
            return BenchModel(folder: folder, size: size)
        }
        let manager = FileManager.default
        if size.dtype.uppercased() == "Q8" {
            // The bf16 checkpoint of the same weights, then `orthus quantize`'s 8-bit copy of it.
            var bf16 = size
            bf16.dtype = "BF16"
            let staging = try generate(bf16, template: template, folder: folder + ".bf16")
            if manager.fileExists(atPath: folder) { try manager.removeItem(atPath: folder) }  // an earlier model
            _ = try Quantization.writeQ8(from: ModelDirectory(path: staging.folder), to: folder)
            try manager.removeItem(atPath: staging.folder)
            try JSONEncoder().encode(size).write(to: URL(fileURLWithPath: folder + "/" + marker))
            return BenchModel(folder: folder, size: size)
        }
        guard let dtype = DType(rawValue: size.dtype.uppercased()), dtype != .int8 else {
            throw BenchError("unknown dtype \(size.dtype): use F32, BF16, F16 or Q8")
        }
        guard size.hidden % size.heads == 0, size.hidden % 16 == 0 else {
            throw BenchError("hidden \(size.hidden) must be a multiple of 16 and of the head count \(size.heads)")
        }
        if manager.fileExists(atPath: folder) { try manager.removeItem(atPath: folder) }  // an earlier model
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
        if let vocabulary = size.vocabulary { config["vocab_size"] = vocabulary }
        if let vq = size.vq {
            config["vq_config"] = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(vq))
        }
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
            .write(to: URL(fileURLWithPath: folder + "/config.json"))
        try Self.writeTokenizer(from: template, to: folder, vocabulary: size.vocabulary)
        let configuration = try OrthusConfiguration.load(path: folder + "/config.json")

        var plan = ShardPlan(dtype: dtype)
        let manifest = TensorManifest(configuration)
        for layer in 0..<size.layers {
            let names = manifest.layerNames(layer)
            for (name, shape) in manifest.layer(layer) {
                switch name {
                case names.inputNorm, names.postNorm, names.qNormWeight, names.kNormWeight:
                    plan.add(name, shape, .constant(1))
                case names.qNormBias, names.kNormBias: plan.add(name, shape, .constant(0))
                default: plan.add(name, shape, .random)
                }
            }
            try plan.write(String(format: "model-layer-%05d.safetensors", layer), in: folder)
        }
        plan.add(TensorManifest.embeddings, manifest.embeddingShape, .random)
        try plan.write("model-embeddings.safetensors", in: folder)
        plan.add(TensorManifest.lmHead, manifest.lmHeadShape, .random)
        try plan.write("model-lm-head.safetensors", in: folder)
        plan.add(TensorManifest.finalNorm, manifest.finalNormShape, .constant(1))
        Self.diffusionHead(&plan, width: size.headWidth, hidden: size.hidden, latent: configuration.vqConfig!.latentDim)
        if size.vq != nil {
            // Chameleon's VQ-VAE at this geometry: its tensors are the ones the engine's encoder and decoder ask for.
            let recorder = ShapeRecorder(configuration: configuration)
            _ = try VQEncoder(directory: recorder)
            _ = try VQDecoder(directory: recorder)
            for (name, shape) in recorder.shapes {
                let norm = name.contains(".norm")  // group norms: weight 1, bias 0
                plan.add(name, shape, norm ? .constant(name.hasSuffix(".weight") ? 1 : 0) : .random)
            }
            let vq = configuration.vqConfig!
            plan.add(TensorManifest.VQNames.prefix + "quantize.embedding.weight", [vq.codes, vq.latentDim], .random)
            plan.add(TensorManifest.codebookIn, [vq.codes, vq.latentDim], .random)
        } else {
            // The template's VQ-VAE and codebook_in, as they are.
            for name in source.tensorNames
            where name.hasPrefix(TensorManifest.VQNames.prefix) || name == TensorManifest.codebookIn {
                let entry = try source.entry(name)
                plan.add(name, entry.shape, .values(try source.load(name, shape: entry.shape).values))
            }
        }
        try plan.write("model-rest.safetensors", in: folder)

        let index: [String: Any] = ["metadata": ["total_size": 0], "weight_map": plan.weightMap]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
            .write(to: URL(fileURLWithPath: folder + "/" + ModelDirectory.indexFileName))
        try JSONEncoder().encode(size).write(to: URL(fileURLWithPath: folder + "/" + marker))
        return BenchModel(folder: folder, size: size)
    }

    /// The template's tokenizer, its BPE vocabulary extended to `vocabulary` ids where that is larger: a random
    /// model picks any id its LM head has, and each must decode (as "t" and its number; no merge reaches them, so
    /// encoding is unchanged).
    static func writeTokenizer(from template: String, to folder: String, vocabulary: Int?) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: template + "/tokenizer.json"))
        guard let vocabulary else { return try data.write(to: URL(fileURLWithPath: folder + "/tokenizer.json")) }
        guard var json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            var model = json["model"] as? [String: Any], var vocab = model["vocab"] as? [String: Int]
        else { throw BenchError("\(template)/tokenizer.json has no BPE model vocabulary") }
        let added = (json["added_tokens"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        let taken = Set(vocab.values).union(added)
        for id in 0..<vocabulary where !taken.contains(id) { vocab["t\(id)"] = id }
        model["vocab"] = vocab
        json["model"] = model
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            .write(to: URL(fileURLWithPath: folder + "/tokenizer.json"))
    }

    /// The diffusion head's tensors: random weights (the final layer near zero, as trained heads start), zero biases
    /// where the reference initializes them so.
    static func diffusionHead(_ plan: inout ShardPlan, width: Int, hidden: Int, latent: Int) {
        typealias Head = TensorManifest.DiffusionHeadNames
        func linear(
            _ name: String,
            _ shape: [Int],
            weight: ShardPlan.Fill = .random,
            bias: ShardPlan.Fill = .constant(0)
        ) {
            plan.add(name + ".weight", shape, weight)
            plan.add(name + ".bias", [shape[0]], bias)
        }
        linear(Head.time0, [width, 256], bias: .random)
        linear(Head.time2, [width, width], bias: .random)
        linear(Head.condition, [width, hidden], bias: .random)
        linear(Head.inputProjection, [width, latent], bias: .random)
        linear(Head.final, [latent, width], weight: .constant(0.001), bias: .random)
        linear(Head.finalModulation, [2 * width, width])
        for block in 0..<3 {
            let names = Head.block(block)
            plan.add(names.norm + ".weight", [width], .constant(1))
            plan.add(names.norm + ".bias", [width], .constant(0))
            linear(names.mlp0, [width, width])
            linear(names.mlp2, [width, width])
            linear(names.modulation, [3 * width, width])
        }
    }
}

/// The tensors of the shard being planned, and the shard of every tensor written so far.
struct ShardPlan {
    enum Fill {
        case random
        case constant(Float)
        case values([Float])
    }

    let dtype: DType
    var pending: [(spec: SafetensorsWriter.Spec, fill: Fill)] = []
    var weightMap: [String: String] = [:]
    var random = SplitMix(seed: 0x0b7e_57ed)

    init(dtype: DType) { self.dtype = dtype }

    mutating func add(_ name: String, _ shape: [Int], _ fill: Fill) {
        pending.append((SafetensorsWriter.Spec(name: name, shape: shape, dtype: dtype), fill))
    }

    /// Streams the pending tensors into shard `file`. Random values are uniform with the variance of 1/fan-in, which
    /// keeps activations of random layers near unit size.
    mutating func write(_ file: String, in folder: String) throws {
        let fills = Dictionary(uniqueKeysWithValues: pending.map { ($0.spec.name, $0.fill) })
        var random = self.random
        try SafetensorsWriter.write(pending.map(\.spec), to: folder + "/" + file) { spec, range in
            switch fills[spec.name]! {
            case .random:
                let fanIn = spec.shape.dropFirst().reduce(1, *)
                return random.uniform(
                    range.count,
                    bound: (3 / Float(max(1, spec.shape.count == 1 ? spec.shape[0] : fanIn))).squareRoot()
                )
            case .constant(let value): return [Float](repeating: value, count: range.count)
            case .values(let values): return Array(values[range])
            }
        }
        self.random = random
        for item in pending { weightMap[item.spec.name] = file }
        pending = []
    }
}

/// A tensor source that hands out zeros of the shape asked for and records every name and shape: building the VQ
/// codec from it lists the tensors a checkpoint of its geometry must hold.
final class ShapeRecorder: TensorSource {
    let configuration: OrthusConfiguration
    private(set) var shapes: [(String, [Int])] = []

    init(configuration: OrthusConfiguration) { self.configuration = configuration }

    func load(_ name: String, shape: [Int]) throws -> LoadedTensor {
        shapes.append((name, shape))
        return LoadedTensor(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)))
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
