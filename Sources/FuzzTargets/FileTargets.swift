import Checkpoint
import Coordinator
import Foundation
import ImageIO
import Tensor
import Tokenizer

/// The decoders of files a process reads: a checkpoint's safetensors header and tensors, its config.json and
/// tokenizer.json, PNG pictures (from clients and from disk), and the coordinator's job journal. Every `try?` here
/// drops a decoder's refusal on purpose: refusing is its job, and only a crash is a finding.
public enum FileTargets {
    /// A safetensors file: the header, then every tensor it names, read as floats.
    public static func safetensors(_ bytes: [UInt8]) {
        guard let file = try? SafetensorsFile(path: FuzzInput.file("model.safetensors", bytes)) else { return }
        for name in file.entries.keys.sorted() { _ = try? file.floats(name) }
    }

    /// config.json, validated as a model's configuration.
    public static func config(_ bytes: [UInt8]) {
        _ = try? OrthusConfiguration.load(path: FuzzInput.file("config.json", bytes))
    }

    /// tokenizer.json, then a round trip of a short text through it when it loads.
    public static func tokenizer(_ bytes: [UInt8]) {
        guard let tokenizer = try? Tokenizer(json: Data(bytes)) else { return }
        guard let ids = try? tokenizer.encode("a red <circle> \u{1F600}") else { return }
        _ = try? tokenizer.decode(ids)
        _ = try? tokenizer.decode(Array(ids.reversed()) + [-1, Int.max])
    }

    /// A PNG, with the pixel limit a small machine would set.
    public static func png(_ bytes: [UInt8]) {
        _ = try? PNGCodec.decode(Data(bytes), maxPixels: 1 << 16)
    }

    /// A journal folder with one job: its spec.json, result.json and noise.npy from the input's three parts.
    public static func journal(_ bytes: [UInt8]) {
        let parts = FuzzInput.parts(bytes, count: 3)
        let folder = FuzzInput.scratch + "/journal"
        do {
            try? FileManager.default.removeItem(atPath: folder)  // absent the first time
            try FileManager.default.createDirectory(atPath: folder + "/1", withIntermediateDirectories: true)
        } catch {
            fatalError("the fuzz target cannot make its journal folder: \(error)")
        }
        for (name, part) in zip(["spec.json", "result.json", "noise.npy"], parts) where !part.isEmpty {
            _ = FuzzInput.file("journal/1/" + name, part)
        }
        _ = try? JournalReader.read(folder: folder)
    }
}
