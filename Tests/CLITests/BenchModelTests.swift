import Benchmark
import Checkpoint
import Foundation
import TestSupport
import Testing
import Tokenizer

/// The bench's generated checkpoints at a geometry of their own (Orthus-7B's, scaled down here): the VQ-VAE's
/// tensors are the ones a real checkpoint of that geometry holds, every id of a larger vocabulary decodes, and a
/// finished generation is reused.
@Suite struct BenchModelTests {
    /// A model of its own geometry, small: a larger vocabulary than the template's and the template's VQ-VAE
    /// generated from its configuration rather than copied.
    static var smallSize: BenchModel.Size {
        BenchModel.Size(
            hidden: 64,
            layers: 2,
            heads: 4,
            intermediate: 176,
            headWidth: 64,
            dtype: "BF16",
            vocabulary: 12_000,
            vq: try! ModelDirectory(path: Fixtures.tinyOrthus).configuration.vqConfig
        )
    }

    @Test func aGeneratedVQVAEHasTheTensorsOfARealCheckpointOfItsGeometry() throws {
        let scratch = try ScratchFolder("bench-model")
        let template = try ModelDirectory(path: Fixtures.tinyOrthus)
        let size = Self.smallSize
        let model = try BenchModel.generate(size, template: Fixtures.tinyOrthus, folder: scratch.file("model"))
        let generated = try ModelDirectory(path: model.folder)
        // The template was exported from the reference implementation: its VQ tensors are the published layout's.
        func vqTensors(_ directory: ModelDirectory) throws -> [String: [Int]] {
            Dictionary(
                uniqueKeysWithValues: try directory.tensorNames.filter {
                    $0.hasPrefix(TensorManifest.VQNames.prefix) || $0 == TensorManifest.codebookIn
                }.map { ($0, try directory.entry($0).shape) }
            )
        }
        #expect(try vqTensors(generated) == vqTensors(template))
        #expect(generated.configuration.vocabSize == 12_000)
        #expect(try generated.entry(TensorManifest.lmHead).shape == [12_000, 64])
        let tokenizer = try Tokenizer(path: generated.tokenizerPath)
        #expect(try tokenizer.decode([11_999, 9_472], skipSpecial: false) == "t11999t9472")
        let original = try Tokenizer(path: template.tokenizerPath)
        #expect(try tokenizer.encode("The quick brown fox") == original.encode("The quick brown fox"))

        // A finished generation of the same size is kept; another size is generated anew.
        let shard = model.folder + "/model-layer-00000.safetensors"
        let written = try FileManager.default.attributesOfItem(atPath: shard)[.modificationDate] as! Date
        _ = try BenchModel.generate(size, template: Fixtures.tinyOrthus, folder: model.folder, reuse: true)
        #expect(try FileManager.default.attributesOfItem(atPath: shard)[.modificationDate] as! Date == written)
        var other = size
        other.layers = 1
        _ = try BenchModel.generate(other, template: Fixtures.tinyOrthus, folder: model.folder, reuse: true)
        #expect(try ModelDirectory(path: model.folder).configuration.layerCount == 1)
    }
}

/// The Orthus-7B geometry bench's whole course on a small model of its own geometry: `orthus generate` as a process
/// of its own, the two-stage cluster, every process's peak memory beside its prediction, the heads.
@Suite struct GeometryBenchTests {
    @Test func everyFigureIsMeasuredOnASmallModel() async throws {
        let scratch = try ScratchFolder("geometry")
        let model = try BenchModel.generate(
            BenchModelTests.smallSize,
            template: Fixtures.tinyOrthus,
            folder: scratch.file("model")
        )
        let figures = try await GeometryBench(
            model: model,
            executable: OrthusProcess.executable,
            probes: MachineProbes(quick: true),
            decodeTokens: 4
        ).run { _ in }
        let names = Set(figures.map(\.name))
        for process in [
            "one process:", "cluster: stage-0", "cluster: stage-1", "cluster: lm-head", "cluster: diffusion-head",
        ] {
            let memory = figures.first { $0.name == "\(process) peak resident" }
            // Tiny weights: the measured resident set is mostly the runtime, the same order as the 64 MiB allowed.
            #expect(
                memory.map { $0.ratio! > 0.3 && $0.ratio! < 3 } == true,
                "\(process): \(String(describing: memory))"
            )
        }
        for expected in [
            "one process: prefill", "one process: decode", "cluster: time to first token", "cluster: decode",
            "diffusion head per patch (100 steps, guided)", "VQ decode of a 16x16 image",
        ] {
            #expect(names.contains(expected), "missing \(expected)")
        }
        #expect(figures.allSatisfy { $0.value.isFinite && $0.value > 0 }, "\(figures.filter { !($0.value > 0) })")
    }
}
