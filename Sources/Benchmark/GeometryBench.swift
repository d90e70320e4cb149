import Checkpoint
import ClusterClient
import ClusterLauncher
import ClusterProtocol
import Foundation
import Heads
import Runtime
import Tensor
import Tokenizer
import VQVAE

/// A model of Orthus-7B's size on this machine (`orthus bench --preset orthus-7b`): one process holding the whole
/// model, then a two-stage cluster of separate processes, each process's peak resident memory against the
/// prediction of `orthus inspect`, with the speed of prefill, decode, the diffusion head and the VQ decoder.
public struct GeometryBench {
    public let model: BenchModel
    /// The `orthus` executable the processes are started from.
    public let executable: String
    public let probes: MachineProbes
    /// Tokens decoded after the prompt.
    public let decodeTokens: Int

    public init(model: BenchModel, executable: String, probes: MachineProbes, decodeTokens: Int = 16) {
        self.model = model
        self.executable = executable
        self.probes = probes
        self.decodeTokens = decodeTokens
    }

    /// A prompt of about 128 tokens.
    static let prompt = Array(
        repeating: "The quick brown fox jumps over the lazy dog while the patient cat watches from the warm window.",
        count: 6
    ).joined(separator: " ")

    public func run(progress: (String) -> Void) async throws -> [Figure] {
        let directory = try ModelDirectory(path: model.folder)
        let summary = try CheckpointSummary(directory)
        let promptTokens = try Tokenizer(path: directory.tokenizerPath).encode(Self.prompt).count + 1  // and BOS
        let cached = promptTokens + decodeTokens
        let cores = ProcessInfo.processInfo.activeProcessorCount
        // The machine's bandwidth drifts: each run is compared with the best probe taken just before and after it.
        let readBefore = probes.bandwidth.best(of: 3)
        let section = "orthus-7b geometry"
        var figures = [Figure(section: section, name: "prompt", value: Double(promptTokens), unit: "tokens")]

        progress("one process with the whole model (orthus generate)")
        let single = try await generate(threads: cores)
        let readAround = probes.bandwidth.best(of: 3)
        let readBandwidth = max(readBefore, readAround)
        figures.append(
            Figure(
                section: section,
                name: "read bandwidth, \(cores) threads",
                value: readBandwidth / 1e9,
                unit: "GB/s"
            )
        )
        let wholeWeights = Double(summary.wholeModelMemory(cachedTokens: 0).weightBytes)
        let decodeBytes = Double(decodeWeightBytes(summary))
        figures += [
            Figure(section: section, name: "one process: load", value: single.load, unit: "s"),
            Figure(section: section, name: "one process: time to first token", value: single.firstToken, unit: "s"),
            Figure(
                section: section,
                name: "one process: prefill",
                value: Double(promptTokens) / single.firstToken,
                unit: "tok/s"
            ),
            Figure(section: section, name: "one process: decode", value: single.decodeRate, unit: "tok/s"),
            Figure(
                section: section,
                name: "one process: decode weight bytes/s",
                value: decodeBytes * single.decodeRate / 1e9,
                unit: "GB/s",
                ratio: decodeBytes * single.decodeRate / readBandwidth,
                against: "of the read bandwidth"
            ),
            memoryFigure(
                "one process: peak resident",
                measured: single.peakBytes,
                predicted: summary.wholeModelMemory(cachedTokens: cached)
            ),
            Figure(section: section, name: "one process: weights in memory", value: wholeWeights / 1e9, unit: "GB"),
        ]

        progress("two stages, an LM-head and a diffusion worker as separate processes")
        figures += try await cluster(summary: summary, cached: cached, threads: cores, bandwidth: readAround)

        progress("the diffusion head and the VQ decoder")
        figures += try heads(directory: directory, singleDecodeRate: single.decodeRate)
        return figures
    }

    /// Weights one decode step reads: every layer's products and the LM head.
    func decodeWeightBytes(_ summary: CheckpointSummary) -> Int {
        let layers = (0..<summary.configuration.layerCount).reduce(0) {
            $0 + (summary.byComponent[.layer($1)]?.residentBytes ?? 0)
        }
        return layers + (summary.byComponent[.lmHead]?.residentBytes ?? 0)
    }

    func memoryFigure(_ name: String, measured: Int, predicted: CheckpointSummary.MemoryPrediction) -> Figure {
        Figure(
            section: "orthus-7b geometry",
            name: name,
            value: Double(measured) / 1e9,
            unit: "GB",
            ratio: Double(measured) / Double(predicted.totalBytes),
            against: String(format: "of %.2f GB predicted", Double(predicted.totalBytes) / 1e9)
        )
    }

    struct GenerateRun {
        var load: Double
        var firstToken: Double
        var decodeRate: Double
        var peakBytes: Int
    }

    /// `orthus generate --stats` on the model, as a process of its own, and the figures of its stats line.
    func generate(threads: Int) async throws -> GenerateRun {
        let log = NSTemporaryDirectory() + "orthus-geometry-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: log) }  // the child's log, read below
        let process = try ChildProcess.start(
            executable: executable,
            arguments: [
                "generate", "--model", model.folder, "--prompt", Self.prompt, "--max-tokens", "\(decodeTokens)",
                "--stats",
            ],
            threads: threads,
            log: log
        )
        // Polled, not waited on: a thread of the caller's task pool stays free while the model runs.
        while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let output = try String(contentsOfFile: log, encoding: .utf8)
        guard process.terminationStatus == 0,
            let line = output.split(separator: "\n").last(where: { $0.hasPrefix("load ") })
        else { throw BenchError("orthus generate failed (status \(process.terminationStatus)):\n\(output)") }
        func number(after label: String) throws -> Double {
            guard let range = line.range(of: label),
                let value = Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
            else { throw BenchError("no '\(label)' in the stats line: \(line)") }
            return value
        }
        // "unknown" (no /proc) has no number: `number` throws, naming the line.
        let peak = try number(after: "peak resident ")
        return GenerateRun(
            load: try number(after: "load "),
            firstToken: try number(after: "first token after "),
            decodeRate: try number(after: "tokens at "),
            peakBytes: Int(peak * Double(1 << 20))
        )
    }
}
