import Foundation
import TestSupport

/// The jobs the cluster tests submit, and what single-process `orthus generate` makes of each: the reference the
/// cluster must reproduce byte for byte (stdout, PNGs, latents, index.html).
struct ReferenceJob: Sendable {
    let name: String
    /// Request options, with `{out}` standing for the job's output folder.
    let options: [String]
    /// Output files, relative to the job's folder.
    let files: [String]

    func arguments(out folder: String) -> [String] {
        options.map { $0.replacingOccurrences(of: "{out}", with: folder) }
    }

    /// What single-process `orthus generate` makes of this job, run now with its outputs in `folder` (made here).
    func generated(in folder: String) async throws -> Outcome {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let single = try await OrthusProcess.output(
            ["generate", "--model", Fixtures.tinyOrthus] + arguments(out: folder)
        )
        guard single.status == 0 else { throw ClusterError("generate failed for \(name): \(single.stderr)") }
        return Outcome(job: self, folder: folder, stdout: single.stdout)
    }

    static let all = [
        ReferenceJob(
            name: "text",
            options: [
                "--prompt", "Hello there", "--max-tokens", "20", "--seed", "3", "--temperature", "0.8", "--top-k", "40",
            ],
            files: []
        ),
        ReferenceJob(
            name: "text-to-image",
            options: [
                "--prompt", "A red cube", "--image-out", "{out}/image.png", "--latents-out", "{out}/latents.npy",
                "--steps", "20", "--seed", "7",
            ],
            files: ["image.png", "latents.npy"]
        ),
        ReferenceJob(
            name: "image-to-text",
            options: [
                "--prompt", "What is in the picture?", "--image", Fixtures.image("landscape-37x23"), "--max-tokens",
                "12",
            ],
            files: []
        ),
        ReferenceJob(
            name: "interleaved",
            options: [
                "--prompt", "Draw picture number 0 and tell me about it.", "--interleaved", "--out-dir", "{out}/answer",
                "--max-tokens", "60", "--steps", "10", "--temperature", "0", "--latents-out", "{out}/latents.npy",
            ],
            files: ["answer/image-1.png", "answer/index.html", "latents.npy"]
        ),
    ]

    /// The single-process outputs of every job, computed once per test run.
    static let expected: [String: Outcome] = {
        // Kept for the whole test run: the outcomes are read into memory.
        let scratch = try! ScratchFolder("reference")
        let folder = scratch.path
        var outcomes: [String: Outcome] = [:]
        for job in all {
            let out = folder + "/" + job.name
            try! FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let result = try! OrthusProcess.run(["generate", "--model", Fixtures.tinyOrthus] + job.arguments(out: out))
            precondition(result.status == 0, "generate failed for \(job.name): \(result.stderr)")
            let outcome = Outcome(job: job, folder: out, stdout: result.stdout)
            precondition(outcome.files.values.allSatisfy { !$0.isEmpty }, "generate left an output empty: \(job.name)")
            outcomes[job.name] = outcome
        }
        return outcomes
    }()

    /// What a run left behind.
    struct Outcome: Equatable, Sendable {
        let stdout: String
        let files: [String: Data]

        init(job: ReferenceJob, folder: String, stdout: String) {
            self.stdout = stdout
            files = Dictionary(
                uniqueKeysWithValues: job.files.map { name in
                    (name, (try? Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))) ?? Data())
                }
            )
        }
    }
}
