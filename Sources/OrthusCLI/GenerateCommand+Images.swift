import ArgumentParser
import Checkpoint
import Engine
import Foundation
import Heads
import ImageIO
import Tensor
import Tokenizer

extension GenerateCommand {
    func runImageMode(directory: ModelDirectory, tokenizer: Tokenizer) throws {
        let model = try OrthusModel(directory: directory, tokenizer: tokenizer)
        if let image = request.image {
            try runImageToText(model, imagePath: image)
            return
        }
        let noise = try request.noiseIn.map { try Self.readNoise($0, latent: model.head.latentDim) }
        let options = ImageOptions(
            guidance: request.cfg ?? (request.interleaved ? 3 : 5),
            steps: request.steps,
            seed: request.seed,
            noise: noise
        )
        let progress = ProgressBar(unit: "patches")
        if let imageOut = request.imageOut {
            let latents = try model.textToImage(prompt: request.prompt, options: options) { event in
                if case .patch(_, let done, let total) = event { progress.update(done: done, total: total) }
            }
            progress.finish()
            try RequestOutputs(prompt: request.prompt, latentsOut: request.latentsOut).writeLatents([latents])
            try PNGCodec.write(model.decodeImage(latents), to: imageOut)
            StandardStreams.err("wrote \(imageOut)\n")
        } else if let outDir = request.outDir {
            let pieces = try model.interleaved(
                prompt: request.prompt,
                maxTokens: request.maxTokens ?? model.text.configuration.contextLength,
                sampling: request.sampling,
                image: options
            ) { event in
                if case .patch(let image, let done, let total) = event {
                    progress.update(done: done, total: total, label: "image \(image + 1)")
                }
            }
            progress.finish()
            try writeInterleaved(pieces, model: model, folder: outDir)
        }
    }

    func runImageToText(_ model: OrthusModel, imagePath: String) throws {
        let picture = try PNGCodec.read(imagePath)
        var detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
        _ = try model.imageToText(
            picture,
            question: request.prompt,
            maxTokens: request.maxTokens ?? 256,
            sampling: request.sampling,
            seed: request.seed
        ) {
            StandardStreams.out(try detokenizer.push($0))
        }
        StandardStreams.out(detokenizer.finish() + "\n")
    }

    /// Writes image-N.png for each image and index.html with the text and images in order, as `submit` does.
    func writeInterleaved(_ pieces: [InterleavedPiece], model: OrthusModel, folder: String) throws {
        let outputs = try pieces.map { piece -> RequestOutputs.Piece in
            switch piece {
            case .text(let ids): .text(try model.tokenizer.decode(ids))
            case .image(let latents): .image(png: try PNGCodec.encode(model.decodeImage(latents)), latents: latents)
            }
        }
        try RequestOutputs(prompt: request.prompt, latentsOut: request.latentsOut).writeInterleaved(
            outputs,
            folder: folder
        )
    }

    /// Noise `[images][patches][latent]` from a float32 `.npy` of shape [images, patches, latent].
    static func readNoise(_ path: String, latent: Int) throws -> [[[Float]]] {
        let (shape, values) = try NumpyFile.read(path)
        guard shape.count == 3, shape[2] == latent else {
            throw ValidationError("--noise-in \(path) has shape \(shape); expected [images, patches, \(latent)]")
        }
        let (images, patches) = (shape[0], shape[1])
        return (0..<images).map { k in
            (0..<patches).map { i in Array(values[((k * patches + i) * latent)..<((k * patches + i + 1) * latent)]) }
        }
    }
}
