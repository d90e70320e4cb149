import ArgumentParser
import Checkpoint
import Foundation
import Generation
import Model

/// `orthus inspect`: what a checkpoint holds and what a layer split would need.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a model folder's configuration, tensor sizes per component and per-stage memory."
    )

    @Argument(help: "Model folder.")
    var model: String

    @Option(help: "Layer split to size, e.g. 0..<16,16..<32 (default: two even stages).")
    var split: String?

    @Option(help: "Positions cached (all sequences together) for the predicted process memory (default: the context).")
    var cachedTokens: Int?

    func validate() throws {
        if let cachedTokens, cachedTokens < 0 { throw ValidationError("--cached-tokens must be 0 or more") }
    }

    func run() throws {
        let directory = try ModelDirectory(path: model)
        let summary = try CheckpointSummary(directory)
        let c = directory.configuration
        var lines: [String] = []
        lines.append("model: \(model) (\(c.architectures?.joined(separator: ", ") ?? "unknown architecture"))")
        lines.append(
            "  hidden \(c.hiddenSize), layers \(c.layerCount), heads \(c.headCount) (kv \(c.keyValueHeads), head dim \(c.headDim)), "
                + "intermediate \(c.intermediateSize), vocab \(c.vocabSize), context \(c.contextLength), rope theta \(c.ropeBase)"
        )
        if let vq = c.vqConfig {
            lines.append(
                "  VQ-VAE: \(vq.resolution ?? 512)px → \(vq.gridSide)x\(vq.gridSide) grid (\(vq.patchesPerImage) patches per image), "
                    + "latent \(vq.latentDim), codebook \(vq.codes)"
            )
        }
        lines.append(
            "  Orthus parts (codebook_in, mlp_head, VQ decoder): "
                + (summary.hasOrthusParts ? "present" : "absent (plain Chameleon: text only)")
        )
        let dtypes = summary.dtypes.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
        lines.append(
            "tensors: \(summary.total.tensors) in \(summary.shardCount) file(s) [\(dtypes)], "
                + "\(Self.count(summary.total.parameters)) parameters, \(Self.bytes(summary.total.storedBytes)) stored"
        )
        lines.append("")
        lines.append(Self.row("component", "tensors", "parameters", "stored"))
        for (component, tally) in summary.byComponent.sorted(by: { $0.key < $1.key }) {
            lines.append(
                Self.row(
                    component.label,
                    "\(tally.tensors)",
                    Self.count(tally.parameters),
                    Self.bytes(tally.storedBytes)
                )
            )
        }

        let ranges = try split.map(Self.parseSplit) ?? Self.evenSplit(c.layerCount, stages: min(2, c.layerCount))
        lines.append("")
        lines.append(
            "stage memory for split \(ranges.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ",")):"
        )
        lines.append(Self.row("stage", "parameters", "stored", "in memory", "KV per token"))
        for (index, stage) in try summary.stages(ranges).enumerated() {
            lines.append(
                Self.row(
                    "\(index): layers \(stage.layers.lowerBound)..<\(stage.layers.upperBound)",
                    Self.count(stage.parameters),
                    Self.bytes(stage.storedBytes),
                    Self.bytes(stage.residentBytes),
                    Self.bytes(stage.kvBytesPerToken)
                )
            )
        }
        let lm = summary.byComponent[.lmHead] ?? .init()
        lines.append(
            Self.row(
                "LM-head worker",
                Self.count(lm.parameters),
                Self.bytes(lm.storedBytes),
                Self.bytes(lm.residentBytes),
                "-"
            )
        )
        if summary.hasOrthusParts {
            let parts = [Component.diffusionHead, .vqEncoder, .vqDecoder].compactMap { summary.byComponent[$0] }
            let parameters = parts.reduce(0) { $0 + $1.parameters }
            let stored = parts.reduce(0) { $0 + $1.storedBytes }
            let resident = parts.reduce(0) { $0 + $1.residentBytes }
            lines.append(
                Self.row(
                    "diffusion worker",
                    Self.count(parameters),
                    Self.bytes(stored),
                    Self.bytes(resident),
                    "-"
                )
            )
        }
        let tokens = cachedTokens ?? c.contextLength
        lines.append("")
        lines.append("predicted resident memory per process, with \(tokens) positions cached (weights + KV + process):")
        func prediction(_ label: String, _ memory: CheckpointSummary.MemoryPrediction) {
            lines.append(
                Self.row(
                    label,
                    Self.bytes(memory.weightBytes),
                    Self.bytes(memory.kvBytes),
                    Self.bytes(memory.overheadBytes),
                    Self.bytes(memory.totalBytes)
                )
            )
        }
        lines.append(Self.row("process", "weights", "KV", "process", "total"))
        prediction("one process (generate)", summary.wholeModelMemory(cachedTokens: tokens))
        for index in ranges.indices {
            prediction("stage \(index)", try summary.stageMemory(ranges, index: index, cachedTokens: tokens))
        }
        prediction("LM-head worker", summary.lmHeadWorkerMemory)
        if summary.hasOrthusParts { prediction("diffusion worker", summary.diffusionWorkerMemory) }
        print(lines.joined(separator: "\n"))
    }

    static func parseSplit(_ text: String) throws -> [Range<Int>] {
        try text.split(separator: ",").map { part in
            guard let range = LayerRange.parse(String(part)) else {
                throw ValidationError("'\(part)' in --split is not a layer range like 0..<16")
            }
            return range
        }
    }

    static func evenSplit(_ layers: Int, stages: Int) -> [Range<Int>] {
        (0..<stages).map { s in (s * layers / stages)..<((s + 1) * layers / stages) }
    }

    static func row(_ columns: String...) -> String {
        columns.enumerated().map { index, text in
            index == 0
                ? text.padding(toLength: 42, withPad: " ", startingAt: 0)
                : String(repeating: " ", count: max(0, 14 - text.count)) + text
        }.joined()
    }

    static func count(_ value: Int) -> String {
        value >= 1_000_000_000
            ? String(format: "%.2fB", Double(value) / 1e9)
            : value >= 1_000_000
                ? String(format: "%.2fM", Double(value) / 1e6)
                : value >= 1_000 ? String(format: "%.1fK", Double(value) / 1e3) : "\(value)"
    }

    static func bytes(_ value: Int) -> String {
        value >= 1 << 30
            ? String(format: "%.2f GiB", Double(value) / Double(1 << 30))
            : value >= 1 << 20
                ? String(format: "%.2f MiB", Double(value) / Double(1 << 20))
                : value >= 1 << 10 ? String(format: "%.1f KiB", Double(value) / 1024) : "\(value) B"
    }
}
