import Checkpoint
import Engine
import Foundation
import Generation
import Heads
import Model
import Tensor
import VQVAE

/// The single-process figures: decode at several batch sizes, prefill, the diffusion head at several row counts, VQ
/// decode and text-to-image per patch, each with its ratio to the machine's limit.
public struct SingleProcessBench {
    public let model: BenchModel
    public let probes: MachineProbes
    public let quick: Bool

    public init(model: BenchModel, probes: MachineProbes, quick: Bool) {
        self.model = model
        self.probes = probes
        self.quick = quick
    }

    public func run(progress: (String) -> Void) throws -> [Figure] {
        let directory = try ModelDirectory(path: model.folder)
        let text = try TextModel(directory: directory)
        var figures: [Figure] = []
        progress("decode")
        figures += try decode(text)
        progress("prefill")
        figures.append(try prefill(text))
        progress("diffusion head")
        let head = try DiffusionHead(directory: directory)
        figures += diffusion(head)
        progress("VQ decode and text-to-image")
        figures += try images(directory: directory)
        progress("eight requests together and one at a time")
        figures += try batching(directory: directory)
        return figures
    }

    /// Bytes of weights one decode step reads: every layer and the LM head, as resident in memory.
    func decodeWeightBytes(_ text: TextModel) -> Double {
        Double(text.stack.residentProductBytes + text.head.residentBytes)
    }

    func decode(_ text: TextModel) throws -> [Figure] {
        let steps = quick ? 8 : 32
        let repeats = quick ? 2 : 3
        let prompt = 16
        let probe = probes.bandwidth
        var figures: [Figure] = []
        for batch in [1, 4, 16] {
            var caches = (0..<batch).map { _ in text.stack.makeCache() }
            var x = try text.stack.embed((0..<(batch * prompt)).map { 4 + $0 % 4000 })
            try text.stack.forward(&x, rowCounts: Array(repeating: prompt, count: batch), caches: &caches)
            let start = caches.map(\.count)
            let (seconds, alongside) = try probe.alongside(repeats: repeats) {
                for step in 0..<steps {
                    var h = try text.stack.embed((0..<batch).map { 9000 - step - $0 })
                    try text.stack.forward(&h, rowCounts: Array(repeating: 1, count: batch), caches: &caches)
                    _ = text.head.logits(h)
                }
            }
            precondition(caches.map(\.count) == start.map { $0 + steps * repeats })
            let bytesPerSecond = decodeWeightBytes(text) * Double(steps) / seconds
            figures += [
                Figure(
                    section: "single process",
                    name: "decode tokens/s, batch \(batch)",
                    value: Double(batch * steps) / seconds,
                    unit: "tok/s"
                ),
                probe.figure(
                    section: "single process",
                    name: "decode weight bytes/s, batch \(batch)",
                    perSecond: bytesPerSecond,
                    alongside: alongside
                ),
            ]
        }
        return figures
    }

    func prefill(_ text: TextModel) throws -> Figure {
        let tokens = quick ? 128 : 512
        let c = text.configuration
        let probe = probes.sgemm
        let (seconds, alongside) = try probe.alongside(repeats: 2) {
            var caches = [text.stack.makeCache()]
            var x = try text.stack.embed((0..<tokens).map { 4 + $0 % 4000 })
            try text.stack.forward(&x, rowCounts: [tokens], caches: &caches)
        }
        let perLayer = 4 * c.hiddenSize * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize
        // Matrix products, plus causal attention's two products (about t²·hidden each over the layer).
        let flops =
            Double(c.layerCount) * (2 * Double(tokens) * Double(perLayer) + 2 * Double(tokens * tokens * c.hiddenSize))
        return probe.figure(
            section: "single process",
            name: "prefill, \(tokens) tokens",
            perSecond: flops / seconds,
            alongside: alongside
        )
    }

    func diffusion(_ head: DiffusionHead) -> [Figure] {
        let steps = quick ? 4 : 16
        let sampler = GuidedSampler(head: head, steps: 100)
        let w = model.size.headWidth
        let latent = head.latentDim
        // Per row and step: input projection, three residual blocks (two w×w layers and the 3w adaLN), and the final
        // layer's 2w adaLN and projection back to the latent.
        let flopsPerRow = 2 * Double(w * latent + 3 * (2 * w * w + 3 * w * w) + 2 * w * w + w * latent)
        let probe = probes.sgemm
        var figures: [Figure] = []
        for rows in [2, 16, 64, 256] {
            let condition = [Float](repeating: 0.1, count: model.size.hidden)
            var patches = (0..<(rows / 2)).map { i in
                sampler.start(
                    noise: PatchNoise.gaussian(seed: 1, image: 0, patch: i, count: latent),
                    condition: condition,
                    unconditional: condition,
                    guidance: 5
                )
            }
            let (seconds, alongside) = probe.alongside(repeats: 2) {
                for _ in 0..<steps { sampler.advance(&patches) }
            }
            let rowSteps = Double(rows * steps)
            figures += [
                Figure(
                    section: "single process",
                    name: "diffusion head rows x steps/s, \(rows) rows",
                    value: rowSteps / seconds,
                    unit: "rows/s"
                ),
                probe.figure(
                    section: "single process",
                    name: "diffusion head, \(rows) rows",
                    perSecond: rowSteps * flopsPerRow / seconds,
                    alongside: alongside
                ),
            ]
        }
        return figures
    }

    func images(directory: ModelDirectory) throws -> [Figure] {
        let engine = try LocalEngine(directory: directory)
        guard let pictures = engine.pictures else { throw GenerationError.notOrthus(path: directory.path) }
        let latents = Matrix(
            rows: pictures.patchCount,
            columns: pictures.latentDim,
            values: [Float](repeating: 0.01, count: pictures.patchCount * pictures.latentDim)
        )
        let decodeSeconds = Stopwatch.best(repeats: 3) { _ = pictures.decoder.decode(latents) }
        let steps = quick ? 10 : 100
        let request = GenerationRequest(mode: .textToImage, prompt: "a red circle", steps: steps)
        var patches = 0
        let imageSeconds = try Stopwatch.best(repeats: 1) {
            let answer = try engine.run(LocalEngine.Job(request))
            for case .image(let image) in answer.pieces { patches += image.count }
        }
        return [
            Figure(
                section: "single process",
                name: "VQ decode (\(pictures.patchCount) patches, template VQ)",
                value: decodeSeconds * 1000,
                unit: "ms"
            ),
            Figure(
                section: "single process",
                name: "text-to-image per patch, \(steps) DDIM steps",
                value: imageSeconds / Double(patches) * 1000,
                unit: "ms"
            ),
        ]
    }

    /// Eight text requests (as `generate --prompts` runs them) together with continuous batching, against the same
    /// requests one after another, in the same engine.
    func batching(directory: ModelDirectory) throws -> [Figure] {
        let engine = try LocalEngine(directory: directory)
        let jobs = (1...8).map { index in
            LocalEngine.Job(
                GenerationRequest(
                    mode: .text,
                    prompt: "Bench prompt number \(index): tell me something.",
                    maxTokens: quick ? 16 : 32,
                    seed: UInt64(index)
                )
            )
        }
        func tokens(_ results: [Result<JobAnswer, any Error>]) throws -> Int {
            try results.reduce(0) { $0 + (try $1.get()).tokens.count }
        }
        _ = try engine.run(jobs[0])  // warm-up: first touch of the weights
        var produced = (together: 0, alone: 0)
        let together = try Stopwatch.best(repeats: 1) { produced.together = try tokens(engine.run(jobs)) }
        let alone = try Stopwatch.best(repeats: 1) {
            produced.alone = try jobs.reduce(0) { $0 + (try tokens(engine.run([$1]))) }
        }
        precondition(produced.together == produced.alone, "together \(produced.together), alone \(produced.alone)")
        return [
            Figure(
                section: "single process",
                name: "8 requests together",
                value: Double(produced.together) / together,
                unit: "tok/s"
            ),
            Figure(
                section: "single process",
                name: "8 requests one at a time",
                value: Double(produced.alone) / alone,
                unit: "tok/s"
            ),
            Figure(
                section: "single process",
                name: "batching: together / one at a time",
                value: alone / together,
                unit: "x",
                ratio: alone / together,
                against: "of one at a time"
            ),
        ]
    }
}
