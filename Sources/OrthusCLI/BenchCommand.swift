import ArgumentParser
import Benchmark
import Checkpoint
import Engine
import Foundation
import Tensor

/// `orthus bench`: measures the machine's limits and the engine against them in one run, on a random checkpoint in
/// the published layout generated for the run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure read bandwidth and sgemm, then decode, prefill, diffusion head, VQ and text-to-image speed.",
        discussion: """
            Prints a table (each figure with its ratio to the machine limit it is bound by) and writes JSON. The \
            model is generated at the size given (random weights; the tokenizer and VQ-VAE come from --template). \
            --quick uses a smaller model and fewer repetitions.
            """
    )

    @Flag(help: "A smaller model and fewer repetitions (about a minute).")
    var quick = false

    @Option(help: "Hidden size (default 2048; 1024 with --quick).")
    var hidden: Int?

    @Option(help: "Decoder layers (default 16; 4 with --quick).")
    var layers: Int?

    @Option(help: "Attention heads (default hidden / 128).")
    var heads: Int?

    @Option(help: "MLP width (default 11/4 of hidden, rounded to 16).")
    var intermediate: Int?

    @Option(help: "Diffusion-head width (Orthus-7B: 1536).")
    var headWidth = 1536

    @Option(
        help: "Stored dtype of the generated weights: BF16, F16, F32, or Q8 (orthus quantize's 8-bit copy of BF16)."
    )
    var dtype = "BF16"

    @Option(help: "Template checkpoint for the tokenizer, vocabulary and VQ-VAE.")
    var template = "Tests/Fixtures/tiny-orthus"

    @Option(
        help: """
            Where to generate the model (default: out/bench-model; out/orthus-7b with --preset orthus-7b); a model \
            an earlier run finished there at the same size is used as it is.
            """
    )
    var modelDir: String?

    @Option(
        help: """
            orthus-7b: a random checkpoint of Orthus-7B's geometry (32 layers, hidden 4096, vocabulary 65536,             512-pixel VQ-VAE; 15 GB, generated once and kept), run as one process and as a two-stage cluster:             each process's memory against the prediction, prefill, decode, diffusion head and VQ decode.
            """
    )
    var preset: String?

    @Option(help: "Write the figures as JSON here.")
    var json = "out/bench.json"

    @Option(help: "The PyTorch peer's script (needs python3 with torch and transformers); --peer-script none skips it.")
    var peerScript = "ops/bench/peer.py"

    var peer: String? { peerScript == "none" ? nil : peerScript }

    @Option(help: "Side of the square weight matrix of the kernel figures (far larger than the caches by default).")
    var kernelSize = 8192

    @Option(help: "The cluster's micro-batches in flight (0: the coordinator's default).")
    var depth = 0

    @Flag(help: "Only the machine's limits and the kernels, on every instruction-set path this CPU has (no model).")
    var kernelsOnly = false

    @Option(help: "llama.cpp's llama-bench executable: compare prefill and decode with it on --gguf (BENCHMARKS.md).")
    var llamaBench: String?

    @Option(help: "The bench model converted to GGUF (bf16, or Q8_0 for --dtype Q8), for --llama-bench.")
    var gguf: String?

    @Flag(help: "With --llama-bench: only the comparison with llama.cpp.")
    var llamaOnly = false

    @Flag(help: "Only generate the model (or find it already there) in --model-dir, and stop.")
    var generateOnly = false

    @Flag(help: "Skip the cluster figures.")
    var singleOnly = false

    @Flag(help: "Only the cluster figures (and the single-process throughput they are compared with).")
    var clusterOnly = false

    @Option(help: "Compute threads (default: ORTHUS_THREADS, OPENBLAS_NUM_THREADS, or every core).")
    var threads: Int?

    func validate() throws {
        guard !(singleOnly && clusterOnly) else {
            throw ValidationError("--single-only and --cluster-only exclude each other")
        }
        if let preset, preset != "orthus-7b" { throw ValidationError("--preset: the one preset is orthus-7b") }
        guard (llamaBench == nil) == (gguf == nil), !llamaOnly || llamaBench != nil else {
            throw ValidationError("--llama-bench and --gguf go together (and --llama-only needs them)")
        }
    }

    func run() async throws {
        if let threads { ComputeThreads.set(threads) }
        let hidden = self.hidden ?? (quick ? 1024 : 2048)
        let size = BenchModel.Size(
            hidden: hidden,
            layers: layers ?? (quick ? 4 : 16),
            heads: heads ?? max(1, hidden / 128),
            intermediate: intermediate ?? (hidden * 11 / 4 + 15) / 16 * 16,
            headWidth: headWidth,
            dtype: dtype
        )
        if preset != nil {
            let folder = modelDir ?? "out/orthus-7b"
            StandardStreams.err("generating Orthus-7B's geometry in \(folder) (kept for the next run)\n")
            let model = try BenchModel.generate(.orthus7B, template: template, folder: folder, reuse: true)
            let probes = MachineProbes(quick: quick)
            let figures = try await GeometryBench(model: model, executable: UpCommand.executablePath, probes: probes)
                .run { StandardStreams.err("measuring \($0)\n") }
            StandardStreams.out(BenchTable.render(figures, size: model.size))
            try write(BenchReport(size: model.size, quick: quick, figures: figures))
            return
        }
        if kernelsOnly {
            StandardStreams.out(BenchTable.render(machineAndKernelFigures().figures, size: nil))
            return
        }
        StandardStreams.err(
            "generating a \(size.layers)-layer, hidden \(size.hidden) \(size.dtype) model in \(modelDir ?? "out/bench-model")\n"
        )
        let model = try BenchModel.generate(
            size,
            template: template,
            folder: modelDir ?? "out/bench-model",
            reuse: true
        )
        if generateOnly { return StandardStreams.err("the model is in \(model.folder)\n") }
        if llamaOnly {
            let figures = try llamaFigures(model)
            StandardStreams.out(BenchTable.render(figures, size: size))
            return try write(BenchReport(size: size, quick: quick, figures: figures))
        }
        var figures = clusterOnly ? [] : try singleProcessFigures(model)
        if !singleOnly {
            figures += try await ClusterBench(
                model: model,
                executable: UpCommand.executablePath,
                quick: quick,
                depth: depth
            ).run {
                StandardStreams.err("measuring \($0)\n")
            }
        }
        StandardStreams.out(BenchTable.render(figures, size: size))
        try write(BenchReport(size: size, quick: quick, figures: figures))
    }

    private func write(_ report: BenchReport) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(
            atPath: (json as NSString).deletingLastPathComponent.isEmpty
                ? "." : (json as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try encoder.encode(report).write(to: URL(fileURLWithPath: json))
        StandardStreams.err("wrote \(json)\n")
    }

    /// The machine's limits, the kernels, the single-process figures and the PyTorch peer.
    private func singleProcessFigures(_ model: BenchModel) throws -> [Figure] {
        var (figures, probes) = machineAndKernelFigures()
        figures += try SingleProcessBench(model: model, probes: probes, quick: quick).run {
            StandardStreams.err("measuring \($0)\n")
        }
        figures += try llamaFigures(model)
        guard let script = peer else { return figures }
        guard model.size.dtype.uppercased() != "Q8" else {
            StandardStreams.err("peer not measured: PyTorch does not load the 8-bit checkpoint\n")
            return figures
        }
        StandardStreams.err("measuring the PyTorch peer\n")
        let ours = { (name: String) in figures.first { $0.name.hasPrefix(name) }?.value ?? 0 }
        let steps = quick ? 10 : 100
        switch PeerBench(
            script: script,
            model: model,
            threads: ComputeThreads.count,
            tokens: quick ? 8 : 32,
            steps: steps
        ).run(oursDecode: ours("decode tokens/s, batch 1"), oursImage: ours("text-to-image per patch")) {
        case .measured(let peerFigures): figures += peerFigures
        case .unavailable(let reason): StandardStreams.err("peer not measured: \(reason)\n")
        }
        return figures
    }

    /// The engine beside llama.cpp, when --llama-bench is given.
    private func llamaFigures(_ model: BenchModel) throws -> [Figure] {
        guard let llamaBench, let gguf else { return [] }
        let text = try TextModel(directory: try ModelDirectory(path: model.folder))
        return try LlamaBench(llamaBench: llamaBench, gguf: gguf, text: text, label: model.size.dtype).run {
            StandardStreams.err("measuring \($0)\n")
        }
    }

    /// The machine's limits, then the kernels on every path.
    private func machineAndKernelFigures() -> (figures: [Figure], probes: MachineProbes) {
        StandardStreams.err("measuring the machine\n")
        let probes = MachineProbes(quick: quick)
        let limits = MachineLimits.measure(probes, quick: quick)
        var figures = [
            Figure(
                section: "machine",
                name: "read bandwidth, 1 thread",
                value: limits.readBytesPerSecondOneThread / 1e9,
                unit: "GB/s"
            ),
            Figure(
                section: "machine",
                name: "read bandwidth, \(limits.threads) threads",
                value: limits.readBytesPerSecond / 1e9,
                unit: "GB/s"
            ),
            Figure(
                section: "machine",
                name: "sgemm, \(limits.threads) threads",
                value: limits.sgemmFlopsPerSecond / 1e9,
                unit: "GFLOP/s"
            ),
        ]
        StandardStreams.err(
            "measuring the kernels (paths: \(KernelBench.paths.map(\.description).joined(separator: ", ")))\n"
        )
        figures += KernelBench(probes: probes, quick: quick, size: kernelSize).run()
        return (figures, probes)
    }
}
