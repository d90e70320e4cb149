import Engine
import Foundation
import Model
import Runtime
import Tensor

/// The engine beside llama.cpp on the same weights and threads (`orthus bench --llama-bench PATH --gguf FILE`):
/// prefill of 512 tokens and decode at batch 1, each run in turns (llama.cpp, then the engine, three times) and the best
/// of each compared. The GGUF is the bench model converted (BENCHMARKS.md says how), in bf16 or, for a Q8 bench
/// model, quantized to Q8_0 by llama.cpp's own `llama-quantize`.
public struct LlamaBench {
    public let llamaBench: String
    public let gguf: String
    public let text: TextModel
    public let label: String
    public let prompt = 512
    public let generated = 32

    public init(llamaBench: String, gguf: String, text: TextModel, label: String) {
        self.llamaBench = llamaBench
        self.gguf = gguf
        self.text = text
        self.label = label
    }

    public func run(progress: (String) -> Void) throws -> [Figure] {
        var (theirPrefill, theirDecode, ourPrefill, ourDecode) = (0.0, 0.0, 0.0, 0.0)
        for turn in 1...3 {
            progress("llama.cpp and the engine, turn \(turn) of 3")
            theirPrefill = max(theirPrefill, try llama(["-p", "\(prompt)", "-n", "0"]))
            ourPrefill = max(ourPrefill, try ours(prefill: true))
            theirDecode = max(theirDecode, try llama(["-p", "0", "-n", "\(generated)"]))
            ourDecode = max(ourDecode, try ours(prefill: false))
        }
        let section = "beside llama.cpp (\(label), \(ComputeThreads.count) threads)"
        func pair(_ name: String, _ ours: Double, _ theirs: Double) -> [Figure] {
            [
                Figure(section: section, name: "llama.cpp \(name)", value: theirs, unit: "tok/s"),
                Figure(
                    section: section,
                    name: "ours \(name)",
                    value: ours,
                    unit: "tok/s",
                    ratio: ours / theirs,
                    against: "of llama.cpp"
                ),
            ]
        }
        return pair("prefill, \(prompt) tokens", ourPrefill, theirPrefill)
            + pair("decode, batch 1", ourDecode, theirDecode)
    }

    /// One `llama-bench` run's tokens per second (its JSON's `avg_ts`).
    func llama(_ arguments: [String]) throws -> Double {
        let log = NSTemporaryDirectory() + "orthus-llama-bench-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: log) }  // the run's output, read below
        let process = try ChildProcess.start(
            executable: llamaBench,
            arguments: ["-m", gguf, "-t", "\(ComputeThreads.count)", "-r", "2", "-o", "json"] + arguments,
            log: log
        )
        process.waitUntilExit()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        // The JSON array follows whatever the loader logged.
        guard process.terminationStatus == 0, let start = output.firstIndex(of: "["),
            let results = try JSONSerialization.jsonObject(with: Data(output[start...].utf8)) as? [[String: Any]],
            let rate = results.last?["avg_ts"] as? Double
        else { throw BenchError("llama-bench failed (status \(process.terminationStatus)):\n\(output.suffix(2000))") }
        return rate
    }

    /// The engine on the same work: a 512-token prompt, or 32 tokens decoded one at a time after a short prompt.
    func ours(prefill: Bool) throws -> Double {
        var caches = [text.stack.makeCache()]
        if prefill {
            let seconds = try Stopwatch.best(repeats: 1) {
                _ = try text.prefill((0..<prompt).map { 4 + $0 % 4000 }, caches: &caches, chunk: prompt)
            }
            return Double(prompt) / seconds
        }
        _ = try text.prefill([4], caches: &caches)
        let seconds = try Stopwatch.best(repeats: 1) {
            for step in 0..<generated { _ = text.head.logits(try text.prefill([5 + step], caches: &caches)) }
        }
        return Double(generated) / seconds
    }
}
