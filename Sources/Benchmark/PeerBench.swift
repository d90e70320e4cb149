import Foundation

/// The PyTorch peer (`ops/bench/peer.py`): the same checkpoint and workload in transformers' Chameleon and the
/// reference diffusion head, on the same threads. Measured only where python3 with torch and transformers is
/// installed; otherwise the reason is returned instead.
public struct PeerBench {
    public let script: String
    public let model: BenchModel
    public let threads: Int
    public let tokens: Int
    public let steps: Int

    public init(script: String, model: BenchModel, threads: Int, tokens: Int, steps: Int) {
        self.script = script
        self.model = model
        self.threads = threads
        self.tokens = tokens
        self.steps = steps
    }

    struct Result: Decodable {
        let decode_tokens_per_second: Double
        let text_to_image_ms_per_patch: Double
        let torch: String
    }

    /// Runs the peer and compares it with our decode tokens/s at batch 1 and text-to-image ms per patch.
    public func run(oursDecode: Double, oursImage: Double) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", script, model.folder, "--threads", "\(threads)", "--tokens", "\(tokens)", "--steps", "\(steps)",
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return .unavailable("python3 could not be started: \(error)") }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // A failed or garbled run is reported as the peer being unavailable, with the last line it printed.
        guard process.terminationStatus == 0,
            let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
            let result = try? JSONDecoder().decode(Result.self, from: Data(line.utf8))
        else {
            let reason = message.split(separator: "\n").last.map(String.init) ?? "exit \(process.terminationStatus)"
            return .unavailable("the PyTorch peer did not run (\(reason))")
        }
        return .measured([
            Figure(
                section: "peer: PyTorch \(result.torch), \(threads) thread(s)",
                name: "decode tokens/s, batch 1",
                value: result.decode_tokens_per_second,
                unit: "tok/s",
                ratio: oursDecode / result.decode_tokens_per_second,
                against: "ours/peer"
            ),
            Figure(
                section: "peer: PyTorch \(result.torch), \(threads) thread(s)",
                name: "text-to-image per patch, \(steps) DDIM steps",
                value: result.text_to_image_ms_per_patch,
                unit: "ms",
                ratio: result.text_to_image_ms_per_patch / oursImage,
                against: "peer/ours"
            ),
        ])
    }

    public enum Outcome {
        case measured([Figure])
        case unavailable(String)
    }
}
