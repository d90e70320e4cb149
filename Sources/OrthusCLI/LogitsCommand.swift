import ArgumentParser
import Checkpoint
import Engine
import Foundation
import Tensor

/// `orthus logits`: logits (and final hidden states) of a token sequence as `.npy`, to validate a checkpoint
/// against another implementation. Needs no tokenizer.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Write float32 logits [positions, vocab] for a token id sequence to a .npy file."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated token ids, e.g. 0,15,7.")
    var ids: String

    @Option(help: "Output .npy file for the logits.")
    var out: String

    @Option(help: "Optional .npy file for the final-normed hidden states [positions, hidden].")
    var hiddenOut: String?

    func run() throws {
        let tokens = try ids.split(separator: ",").map { part -> Int in
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let id = Int(text) else { throw ValidationError("'\(text)' in --ids is not an integer token id") }
            return id
        }
        guard !tokens.isEmpty else { throw ValidationError("--ids is empty") }
        let directory = try ModelDirectory(path: modelOptions.model)
        let vocab = directory.configuration.vocabSize
        if let bad = tokens.first(where: { !(0..<vocab).contains($0) }) {
            throw ValidationError("token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        guard tokens.count <= directory.configuration.contextLength else {
            throw ValidationError("\(tokens.count) ids exceed the context of \(directory.configuration.contextLength)")
        }
        let model = try TextModel(directory: directory)
        let (logits, hidden) = try model.logits(ids: tokens)
        try NumpyFile.write(logits.storage, shape: [logits.rows, logits.columns], to: out)
        if let hiddenOut {
            try NumpyFile.write(hidden.storage, shape: [hidden.rows, hidden.columns], to: hiddenOut)
        }
    }
}
