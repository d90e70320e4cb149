import Foundation
import Tensor
import TestSupport
import Testing

/// The whole model on every kernel path this CPU has (`ORTHUS_KERNELS`), as users run it: logits (of the model and
/// of its 8-bit copy), a text answer and a drawn picture with its latents come out byte for byte the same, so a cluster of AVX-512, AVX2 and ARM hosts
/// gives what one process gives. (The default path is the one every golden test checks against the references.)
@Suite struct KernelPathOutputTests {
    let model = Fixtures.root + "/tiny-orthus"
    let scratch = try! ScratchFolder("kernel-paths")

    /// The tiny model in 8 bits (`orthus quantize`), made once for every path's runs.
    func quantized() async throws -> String {
        let folder = scratch.file("q8")
        let result = try await OrthusProcess.output(["quantize", "--model", model, "--out", folder])
        #expect(result.status == 0, "\(result.stderr)")
        return folder
    }

    /// Every output file of one path's runs, and the text answer.
    func outputs(on path: KernelPath, q8: String) async throws -> [String: Data] {
        let folder = scratch.file(path.description)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let environment = ["ORTHUS_KERNELS": path.description]
        let runs = [
            ["logits", "--model", model, "--ids", "0,5,17,300,2041,8000,9", "--out", folder + "/logits.npy"],
            [
                "generate", "--model", model, "--prompt", "a red circle", "--image-out", folder + "/image.png",
                "--latents-out", folder + "/latents.npy", "--seed", "3", "--steps", "20",
            ],
            ["generate", "--model", model, "--prompt", "The quick brown fox", "--max-tokens", "24"],
            ["logits", "--model", q8, "--ids", "0,5,17,300,2041,8000,9", "--out", folder + "/logits-q8.npy"],
        ]
        var files: [String: Data] = [:]
        for arguments in runs {
            let result = try await OrthusProcess.output(arguments, environment: environment)
            #expect(result.status == 0, "\(path): \(result.stderr)")
            #expect(!result.stderr.contains("ORTHUS_KERNELS"), "\(path) was not honoured: \(result.stderr)")
            if arguments.contains("--max-tokens") { files["answer"] = Data(result.stdout.utf8) }
        }
        for name in ["logits.npy", "image.png", "latents.npy", "logits-q8.npy"] {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
        return files
    }

    @Test func everyPathGivesTheSameBytes() async throws {
        let paths = KernelPath.available
        let q8 = try await quantized()
        let reference = try await outputs(on: .best, q8: q8)
        #expect(reference["answer"]!.count > 0 && reference["image.png"]!.count > 0)
        for path in paths where path != .best {
            let files = try await outputs(on: path, q8: q8)
            for (name, bytes) in reference {
                #expect(files[name] == bytes, "\(name) on \(path) differs from \(KernelPath.best)")
            }
        }
    }
}

/// The 8-bit copy as users make and run it: its logits stay close to the original's on the golden prompt.
@Suite struct QuantizeCommandTests {
    @Test func anEightBitCopyRunsAndItsLogitsStayClose() async throws {
        let scratch = try ScratchFolder("quantize-cli")
        let model = Fixtures.root + "/tiny-orthus"
        let result = try await OrthusProcess.output(["quantize", "--model", model, "--out", scratch.file("q8")])
        #expect(
            result.status == 0 && result.stdout.contains("quantized 29 tensors"),
            "\(result.stdout)\(result.stderr)"
        )
        let ids = "0,5,17,300,2041,8000,9"
        for (folder, out) in [(model, "full.npy"), (scratch.file("q8"), "q8.npy")] {
            let run = try await OrthusProcess.output([
                "logits", "--model", folder, "--ids", ids, "--out", scratch.file(out),
            ])
            #expect(run.status == 0, "\(run.stderr)")
        }
        let full = try NumpyFile.read(scratch.file("full.npy")).values
        let eight = try NumpyFile.read(scratch.file("q8.npy")).values
        let scale = full.map(abs).max()!
        let worst = zip(full, eight).map { abs($0 - $1) }.max()!
        #expect(worst > 0 && worst <= 0.05 * scale, "largest difference \(worst) of \(scale)")
        let bad = try await OrthusProcess.output(["quantize", "--model", model, "--out", model])
        #expect(bad.status != 0 && bad.stderr.contains("out"), "\(bad.stderr)")
    }
}
