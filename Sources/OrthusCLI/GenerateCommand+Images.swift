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
        if let image {
            try runImageToText(model, imagePath: image)
            return
        }
        let noise = try noiseIn.map { try Self.readNoise($0, latent: model.head.latentDim) }
        let options = ImageOptions(guidance: cfg ?? (interleaved ? 3 : 5), steps: steps, seed: seed, noise: noise)
        let progress = ProgressBar(unit: "patches")
        if let imageOut {
            let latents = try model.textToImage(prompt: prompt, options: options) { event in
                if case .patch(_, let done, let total) = event { progress.update(done: done, total: total) }
            }
            progress.finish()
            try writeLatents([latents])
            try PNGCodec.write(model.decodeImage(latents), to: imageOut)
            StandardStreams.err("wrote \(imageOut)\n")
        } else if let outDir {
            let pieces = try model.interleaved(
                prompt: prompt,
                maxTokens: maxTokens ?? model.text.configuration.contextLength,
                sampling: sampling,
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
            question: prompt,
            maxTokens: maxTokens ?? 256,
            sampling: sampling,
            seed: seed
        ) {
            StandardStreams.out(try detokenizer.push($0))
        }
        StandardStreams.out(detokenizer.finish() + "\n")
    }

    func writeLatents(_ images: [[[Float]]]) throws {
        guard let latentsOut else { return }
        let patches = images.first?.count ?? 0
        let width = images.first?.first?.count ?? 0
        try NumpyFile.write(
            images.flatMap { $0.flatMap { $0 } },
            shape: [images.count, patches, width],
            to: latentsOut
        )
    }

    /// Writes image-N.png for each image and index.html with the text and images in order.
    func writeInterleaved(_ pieces: [InterleavedPiece], model: OrthusModel, folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var html = """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>Orthus</title>
            <style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.5}
            img{display:block;margin:1em 0;image-rendering:pixelated;width:256px}</style></head><body>
            <p><b>Prompt:</b> \(Self.escape(prompt))</p>

            """
        var images: [[[Float]]] = []
        var text = ""
        for piece in pieces {
            switch piece {
            case .text(let ids):
                let part = try model.tokenizer.decode(ids)
                text += part
                html += "<p>" + Self.escape(part).replacingOccurrences(of: "\n", with: "<br>") + "</p>\n"
            case .image(let latents):
                images.append(latents)
                let name = "image-\(images.count).png"
                try PNGCodec.write(model.decodeImage(latents), to: folder + "/" + name)
                html += "<img src=\"\(name)\" alt=\"generated image \(images.count)\">\n"
                text += "\n[\(name)]\n"
            }
        }
        html += "</body></html>\n"
        try html.write(toFile: folder + "/index.html", atomically: true, encoding: .utf8)
        try writeLatents(images)
        StandardStreams.out(text + "\n")
        StandardStreams.err("wrote \(folder)/index.html and \(images.count) image(s)\n")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
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
