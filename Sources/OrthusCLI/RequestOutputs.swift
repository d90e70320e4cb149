import ClusterClient
import Foundation
import Tensor

/// The files and text a request leaves behind, the same whether it ran in this process (`generate`) or on a cluster
/// (`submit`): `--latents-out` as .npy, and for interleaved answers image-N.png files plus index.html.
struct RequestOutputs {
    /// An answer's pieces as written: decoded text and encoded pictures (the cluster client's pieces).
    typealias Piece = JobOutcome.Piece

    /// Shown at the top of index.html.
    let prompt: String
    let latentsOut: String?

    /// Writes `--latents-out`, float32 [images, patches, latent], when it was asked for.
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

    /// Writes image-N.png for each image and index.html with the text and images in order; prints the text with a
    /// `[image-N.png]` line where each image stands.
    func writeInterleaved(_ pieces: [Piece], folder: String, echo: Bool = true) throws {
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
            case .text(let part):
                text += part
                html += "<p>" + Self.escape(part).replacingOccurrences(of: "\n", with: "<br>") + "</p>\n"
            case .image(let png, let latents):
                images.append(latents)
                let name = "image-\(images.count).png"
                try Data(png).write(to: URL(fileURLWithPath: folder + "/" + name))
                html += "<img src=\"\(name)\" alt=\"generated image \(images.count)\">\n"
                text += "\n[\(name)]\n"
            }
        }
        html += "</body></html>\n"
        try html.write(toFile: folder + "/index.html", atomically: true, encoding: .utf8)
        try writeLatents(images)
        guard echo else { return }
        StandardStreams.out(text + "\n")
        StandardStreams.err("wrote \(folder)/index.html and \(images.count) image(s)\n")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
