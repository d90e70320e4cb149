import ArgumentParser
import Checkpoint
import Engine
import Foundation
import Heads
import Runtime
import Tensor
import Tokenizer

/// `orthus generate`: one request in one process — text, text-to-image, image-to-text or interleaved.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text, an image (--image-out), an answer about an image (--image) or both (--interleaved).",
        discussion: """
            Text: the prompt is BOS + prompt + SEP; stops on SEP or EOS; image ids masked.
            --image-out: text-to-image with classifier-free guidance (default 5) and DDIM (default 100 steps).
            --image IN.png: the prompt is a question about the image (greedy unless --temperature is given).
            --interleaved --out-dir DIR: text and images (guidance 3, top-k 50 sampling); writes PNGs and index.html.
            """
    )

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var request: RequestOptions

    @Flag(help: "Print token counts and speeds to stderr.")
    var stats = false

    func run() throws {
        let directory = try ModelDirectory(path: modelOptions.model)
        let tokenizer = try Tokenizer(path: directory.tokenizerPath)
        if request.imageOut != nil || request.image != nil || request.interleaved {
            try runImageMode(directory: directory, tokenizer: tokenizer)
        } else {
            try runText(directory: directory, tokenizer: tokenizer)
        }
    }

    func runText(directory: ModelDirectory, tokenizer: Tokenizer) throws {
        let loadStart = ContinuousClock.now
        let model = try TextModel(directory: directory)
        let special = SpecialTokens.resolve(directory.configuration, tokenizer)
        let ids = try TextModel.promptIDs(request.prompt, tokenizer: tokenizer, special: special)
        let options = GenerationOptions(
            maxTokens: request.maxTokens ?? 256,
            sampling: request.sampling,
            seed: request.seed,
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
                    format:
                        "load %.2fs, prompt %d tokens, first token after %.3fs, %d tokens at %.1f tok/s (%@)\n",
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
