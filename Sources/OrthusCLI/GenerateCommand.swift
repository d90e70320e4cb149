import ArgumentParser
import Checkpoint
import Engine
import Foundation
import Heads
import Tensor
import Tokenizer

/// `orthus generate`: text generation in one process, streamed to stdout.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt (BOS + prompt + SEP; stops on SEP or EOS; image ids masked)."
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The prompt text.")
    var prompt: String

    @Option(help: "Most tokens to generate.")
    var maxTokens: Int = 256

    @Option(help: "Seed of the sampling random numbers.")
    var seed: UInt64 = 0

    @Option(help: "Sampling temperature; 0 is greedy decoding.")
    var temperature: Float = 0

    @Option(help: "Keep the k most likely tokens when sampling; 0 keeps all.")
    var topK: Int = 0

    @Option(help: "Nucleus sampling threshold in (0, 1]; 1 keeps all.")
    var topP: Float = 1

    @Flag(help: "Print token counts and speeds to stderr.")
    var stats = false

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be >= 0") }
        guard topK >= 0 else { throw ValidationError("--top-k must be >= 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        let loadStart = ContinuousClock.now
        let directory = try ModelDirectory(path: modelOptions.model)
        let tokenizer = try Tokenizer(path: directory.tokenizerPath)
        let model = try TextModel(directory: directory)
        let special = SpecialTokens.resolve(directory.configuration, tokenizer)
        let ids = try TextModel.promptIDs(prompt, tokenizer: tokenizer, special: special)
        let options = GenerationOptions(
            maxTokens: maxTokens,
            sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP),
            seed: seed,
            mask: model.textOnlyMask(special, tokenizer: tokenizer),
            stopIDs: [special.sep, special.eos]
        )

        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        let start = ContinuousClock.now
        var firstToken: ContinuousClock.Instant?
        let result = try model.generate(prompt: ids, options: options) { token in
            if firstToken == nil { firstToken = .now }
            StandardStreams.out(try detokenizer.push(token))
        }
        StandardStreams.out(detokenizer.finish() + "\n")
        if stats {
            let end = ContinuousClock.now
            let decodeSeconds = firstToken.map { (end - $0).seconds } ?? 0
            StandardStreams.err(
                String(
                    format: "load %.2fs, prompt %d tokens, first token after %.3fs, %d tokens at %.1f tok/s (%@)\n",
                    (start - loadStart).seconds,
                    ids.count,
                    firstToken.map { ($0 - start).seconds } ?? 0,
                    result.tokens.count,
                    decodeSeconds > 0 ? Double(result.tokens.count - 1) / decodeSeconds : 0,
                    "\(result.reason)"
                )
            )
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
