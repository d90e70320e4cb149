import ArgumentParser
import Checkpoint
import Engine
import Evaluation
import Foundation
import Generation
import Tensor
import Tokenizer

/// `orthus quantize`: an 8-bit copy of a checkpoint, and how far its logits move.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write an 8-bit copy of a checkpoint (blocks of 32 weights with an f16 scale, as llama.cpp's Q8_0).",
        discussion: """
            The decoder layers' projections and the LM head become int8 with their scales (…weight_scale); the \
            embeddings, norms, the diffusion head and the VQ-VAE are kept as stored. Every command loads the result \
            as it loads the original. With --compare, the logits of both models on an eval set's prompts and \
            questions are compared: the largest difference and how often the top token agrees.
            """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Folder to write the 8-bit checkpoint to.")
    var out: String

    @Option(help: "An eval set folder (set.json): compare logits on its prompts and questions.")
    var compare: String?

    func run() throws {
        let source = try ModelDirectory(path: modelOptions.model)
        let report = try Quantization.writeQ8(from: source, to: out)
        print(
            String(
                format: "quantized %d tensors, kept %d: %.1f MiB -> %.1f MiB",
                report.quantized,
                report.kept,
                Double(report.bytesBefore) / Double(1 << 20),
                Double(report.bytesAfter) / Double(1 << 20)
            )
        )
        if let compare { try Self.compareLogits(source, try ModelDirectory(path: out), set: compare) }
    }

    /// Every position's logits of both models on the set's texts: the largest difference (and the largest logit
    /// beside it) and the share of positions whose top token is the same.
    static func compareLogits(_ original: ModelDirectory, _ quantized: ModelDirectory, set folder: String) throws {
        let set = try EvalSet.load(folder: folder)
        let texts = set.prompts.map(\.prompt) + set.questions.map(\.question)
        let tokenizer = try Tokenizer(path: original.tokenizerPath)
        let bos = SpecialTokens.resolve(original.configuration, tokenizer).bos
        let (full, eight) = (try TextModel(directory: original), try TextModel(directory: quantized))
        var (largest, largestLogit, positions, agreeing) = (Float(0), Float(0), 0, 0)
        for text in Set(texts).sorted() {
            let ids = [bos] + (try tokenizer.encode(text))
            let (a, b) = (try full.logits(ids: ids).logits, try eight.logits(ids: ids).logits)
            let width = a.columns
            for row in 0..<a.rows {
                let x = a.storage[(row * width)..<((row + 1) * width)]
                let y = b.storage[(row * width)..<((row + 1) * width)]
                for (p, q) in zip(x, y) {
                    largest = max(largest, abs(p - q))
                    largestLogit = max(largestLogit, abs(p))
                }
                if x.indices.max(by: { x[$0] < x[$1] }) == y.indices.max(by: { y[$0] < y[$1] }) { agreeing += 1 }
                positions += 1
            }
        }
        print(
            String(
                format:
                    "logits on %d texts, %d positions: largest difference %.4f (largest logit %.2f, %.2f%%), top-1 agreement %.2f%%",
                Set(texts).count,
                positions,
                largest,
                largestLogit,
                100 * largest / max(largestLogit, .leastNonzeroMagnitude),
                100 * Double(agreeing) / Double(max(positions, 1))
            )
        )
    }
}
