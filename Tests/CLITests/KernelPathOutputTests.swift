import Foundation
import Tensor
import TestSupport
import Testing

/// The whole model on every kernel path this CPU has (`ORTHUS_KERNELS`), as users run it: logits, a text answer and
/// a drawn picture with its latents come out byte for byte the same, so a cluster of AVX-512, AVX2 and ARM hosts
/// gives what one process gives. (The default path is the one every golden test checks against the references.)
@Suite struct KernelPathOutputTests {
    let model = Fixtures.root + "/tiny-orthus"
    let scratch = try! ScratchFolder("kernel-paths")

    /// Every output file of one path's runs, and the text answer.
    func outputs(on path: KernelPath) throws -> [String: Data] {
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
        ]
        var files: [String: Data] = [:]
        for arguments in runs {
            let result = try OrthusProcess.run(arguments, environment: environment)
            #expect(result.status == 0, "\(path): \(result.stderr)")
            #expect(!result.stderr.contains("ORTHUS_KERNELS"), "\(path) was not honoured: \(result.stderr)")
            if arguments.contains("--max-tokens") { files["answer"] = Data(result.stdout.utf8) }
        }
        for name in ["logits.npy", "image.png", "latents.npy"] {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
        return files
    }

    @Test func everyPathGivesTheSameBytes() throws {
        let paths = KernelPath.available
        let reference = try outputs(on: .best)
        #expect(reference["answer"]!.count > 0 && reference["image.png"]!.count > 0)
        for path in paths where path != .best {
            let files = try outputs(on: path)
            for (name, bytes) in reference {
                #expect(files[name] == bytes, "\(name) on \(path) differs from \(KernelPath.best)")
            }
        }
    }
}
