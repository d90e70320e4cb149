import Checkpoint
import Foundation
import Heads
import Model
import Planner
import Runtime
import Tensor
import VQVAE

/// `orthus profile`: this host as the engine uses it, with a model of the geometry it will run (`HostProfile`). Each
/// figure is the best of a few runs of the real code path: one of the model's layers over decode micro-batches of 1,
/// 4 and 16 rows (each row a sequence with 64 positions of context) and over a prefill chunk, the LM head, the
/// diffusion head's DDIM steps, a VQ decode; and the machine's read bandwidth and sgemm rate.
public struct HostProfiler {
    let directory: ModelDirectory
    let probes: MachineProbes

    public init(directory: ModelDirectory) {
        self.directory = directory
        probes = MachineProbes(quick: true)
    }

    public func measure(progress: (String) -> Void = { _ in }) throws -> HostProfile {
        let c = directory.configuration
        progress("read bandwidth and sgemm")
        let limits = MachineLimits.measure(probes, quick: true)
        // A middle layer: neither the embeddings nor the final norm ride along.
        let index = c.layerCount > 2 ? c.layerCount / 2 : 0
        progress("layer \(index)")
        let stack = try LayerStack(directory: directory, layers: index..<(index + 1))
        let context = min(64, c.contextLength / 4)
        var layerSeconds: [Int: Double] = [:]
        for rows in [1, 4, 16] {
            var caches = (0..<rows).map { _ in stack.makeCache() }
            // Every sequence starts with `context` positions, so attention reads a cache as in decoding.
            var prompt = Self.hidden(rows: rows * context, width: c.hiddenSize)
            try stack.forward(&prompt, rowCounts: Array(repeating: context, count: rows), caches: &caches)
            var best = Double.infinity
            for _ in 0..<5 {
                var x = Self.hidden(rows: rows, width: c.hiddenSize)
                best = min(
                    best,
                    try Stopwatch.best(repeats: 1) {
                        try stack.forward(&x, rowCounts: Array(repeating: 1, count: rows), caches: &caches)
                    }
                )
            }
            layerSeconds[rows] = best
        }
        let chunk = min(64, c.contextLength / 2)
        let prefill = try Stopwatch.best(repeats: 3) {
            var caches = [stack.makeCache()]
            var x = Self.hidden(rows: chunk, width: c.hiddenSize)
            try stack.forward(&x, rowCounts: [chunk], caches: &caches)
        }
        progress("LM head")
        let head = try LMHead(directory: directory)
        let finals = Self.hidden(rows: 16, width: c.hiddenSize)
        let lmSeconds = Stopwatch.best(repeats: 3) { _ = head.logits(finals) } / 16
        progress("diffusion head")
        let diffusion = try DiffusionHead(directory: directory)
        let sampler = GuidedSampler(head: diffusion, steps: 100)
        let condition = Self.hidden(rows: 1, width: c.hiddenSize).storage
        var patches = (0..<8).map { i in
            sampler.start(
                noise: PatchNoise.gaussian(seed: 1, image: 0, patch: i, count: diffusion.latentDim),
                condition: condition,
                unconditional: condition,
                guidance: 5
            )
        }
        let steps = 4
        let diffusionSeconds = Stopwatch.best(repeats: 3) { for _ in 0..<steps { sampler.advance(&patches) } }
        progress("VQ decode")
        let decoder = try VQDecoder(directory: directory)
        let latents = Matrix(
            rows: decoder.patchCount,
            columns: decoder.latentDim,
            values: [Float](repeating: 0.01, count: decoder.patchCount * decoder.latentDim)
        )
        let decodeSeconds = Stopwatch.best(repeats: 2) { _ = decoder.decode(latents) }
        progress("a cluster message over loopback")
        let message = try MessageProbe.oneWaySeconds(bytes: 8 * c.hiddenSize * 4)
        return HostProfile(
            host: ProcessInfo.processInfo.hostName,
            cores: ProcessInfo.processInfo.activeProcessorCount,
            threads: ComputeThreads.count,
            memoryBytes: Int(ProcessInfo.processInfo.physicalMemory),
            availableBytes: MachineMemory.available(),
            readBytesPerSecond: limits.readBytesPerSecond,
            sgemmFlopsPerSecond: limits.sgemmFlopsPerSecond,
            hiddenSize: c.hiddenSize,
            intermediateSize: c.intermediateSize,
            layerSeconds: layerSeconds,
            prefillChunk: chunk,
            prefillLayerSeconds: prefill,
            lmHeadSecondsPerRow: lmSeconds,
            // 8 CFG pairs: 16 rows per step.
            diffusionSecondsPerRowStep: diffusionSeconds / Double(steps * 16),
            vqDecodeSeconds: decodeSeconds,
            messageSeconds: message
        )
    }

    /// Deterministic activations of a plausible size (a layer's input is RMS-normed inside it).
    static func hidden(rows: Int, width: Int) -> Matrix {
        Matrix(rows: rows, columns: width, values: (0..<(rows * width)).map { Float(sin(Double($0) * 0.37)) })
    }
}
