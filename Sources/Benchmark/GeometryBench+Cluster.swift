import Checkpoint
import ClusterClient
import ClusterLauncher
import ClusterProtocol
import Foundation
import Heads
import Runtime
import Tensor
import VQVAE
import Wire

extension GeometryBench {
    /// The model over two stages of half the layers each, an LM-head worker and a diffusion worker, every one a
    /// process: one text job's time to first token and per token, and each process's peak resident memory against
    /// its prediction. The stages take turns on one sequence, so each computes with every core. `bandwidth` is the read
    /// bandwidth measured just before; the best of it and a probe right after is the limit.
    func cluster(summary: CheckpointSummary, cached: Int, threads: Int, bandwidth: Double) async throws -> [Figure] {
        let scratch = NSTemporaryDirectory() + "orthus-geometry-cluster-" + UUID().uuidString
        let cluster = try ClusterProcesses(executable: executable, logs: scratch)
        defer {
            cluster.stop()
            try? FileManager.default.removeItem(atPath: scratch)  // the processes' own logs
        }
        let layers = summary.configuration.layerCount
        let split = [0..<(layers / 2), (layers / 2)..<layers]
        try cluster.startCoordinator(model: model.folder, threads: 1)
        let join = ["--coordinator", cluster.workers, "--model", model.folder]
        for (index, range) in split.enumerated() {
            try cluster.start(
                "stage-\(index)",
                ["stage"] + join + ["--layers", "\(range.lowerBound)..<\(range.upperBound)"],
                threads: threads
            )
        }
        try cluster.start("lm-head", ["lm-head"] + join, threads: threads)
        try cluster.start("diffusion-head", ["diffusion-head"] + join, threads: 1)
        let client = BenchClient(client: try ClusterClient(endpoint: cluster.clients))
        try await cluster.waitUntil("the orthus-7b cluster", client: client.client, timeout: .seconds(600)) {
            $0.ready && $0.members.count == split.count + 2
        }
        let timing = try await client.run(
            JobSpec(mode: .text, prompt: Self.prompt, maxTokens: decodeTokens, seed: 1)
        )
        let section = "orthus-7b geometry"
        let bandwidth = max(bandwidth, probes.bandwidth.best(of: 3))
        let perToken = (timing.timePerToken ?? .zero).seconds
        let decodeBytes = Double(decodeWeightBytes(summary))
        var figures = [
            Figure(
                section: section,
                name: "cluster: time to first token",
                value: (timing.firstToken ?? .zero).seconds,
                unit: "s"
            ),
            Figure(section: section, name: "cluster: decode", value: perToken > 0 ? 1 / perToken : 0, unit: "tok/s"),
            Figure(
                section: section,
                name: "cluster: decode weight bytes/s",
                value: perToken > 0 ? decodeBytes / perToken / 1e9 : 0,
                unit: "GB/s",
                ratio: perToken > 0 ? decodeBytes / perToken / bandwidth : 0,
                against: "of the read bandwidth"
            ),
        ]
        let predictions: [(String, CheckpointSummary.MemoryPrediction)] =
            try split.indices.map {
                ("stage-\($0)", try summary.stageMemory(split, index: $0, cachedTokens: cached))
            } + [("lm-head", summary.lmHeadWorkerMemory), ("diffusion-head", summary.diffusionWorkerMemory)]
        for (name, predicted) in predictions {
            guard let pid = cluster.process(name)?.processIdentifier,
                let peak = ProcessMemory.peakResidentBytes(pid: pid)
            else { throw BenchError("cannot read the peak resident memory of \(name)") }
            figures.append(memoryFigure("cluster: \(name) peak resident", measured: peak, predicted: predicted))
        }
        return figures
    }

    /// The diffusion head's time per patch (100 DDIM steps, guided: two rows a step), the VQ decoder on a whole
    /// 512-pixel image, and a whole image's time from them: each patch one backbone decode step (as measured in one
    /// process) and its 100 head steps, then the decode. The image is extrapolated, not run (about ten minutes here).
    func heads(directory: ModelDirectory, singleDecodeRate: Double) throws -> [Figure] {
        let head = try DiffusionHead(directory: directory)
        let sampler = GuidedSampler(head: head, steps: 100)
        let condition = [Float](repeating: 0.1, count: directory.configuration.hiddenSize)
        let perPatch = Stopwatch.best(repeats: 3) {
            var patches = [
                sampler.start(
                    noise: PatchNoise.gaussian(seed: 1, image: 0, patch: 0, count: head.latentDim),
                    condition: condition,
                    unconditional: condition,
                    guidance: 5
                )
            ]
            for _ in 0..<100 { sampler.advance(&patches) }
        }
        let decoder = try VQDecoder(directory: directory)
        let vq = directory.configuration.vqConfig ?? VQConfiguration()
        let latents = Matrix(
            rows: vq.patchesPerImage,
            columns: vq.latentDim,
            values: (0..<(vq.patchesPerImage * vq.latentDim)).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        )
        let decodeSeconds = Stopwatch.best(repeats: 1) { _ = decoder.decode(latents) }
        let backboneStep = singleDecodeRate > 0 ? 1 / singleDecodeRate : 0
        let section = "orthus-7b geometry"
        let side = (vq.resolution ?? 512)
        return [
            Figure(
                section: section,
                name: "diffusion head per patch (100 steps, guided)",
                value: perPatch * 1000,
                unit: "ms"
            ),
            Figure(section: section, name: "VQ decode of a \(side)x\(side) image", value: decodeSeconds, unit: "s"),
            Figure(
                section: section,
                name: "whole image, \(vq.patchesPerImage) patches (extrapolated from one patch)",
                value: Double(vq.patchesPerImage) * (backboneStep + perPatch) + decodeSeconds,
                unit: "s"
            ),
        ]
    }
}
