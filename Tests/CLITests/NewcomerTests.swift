import Foundation
import TestSupport
import Testing

/// What a newcomer meets first: each mistake gets a message naming the flag or file and what is wrong, no Foundation
/// error dump, no usage text for what is not a usage error, and nothing written by a command that refuses.
@Suite struct NewcomerTests {
    @Test func mistakesAreNamedPlainly() async throws {
        let scratch = try ScratchFolder("newcomer")
        let missing = try await OrthusProcess.output(["up", scratch.file("nope.json")])
        #expect(missing.status != 0 && missing.stderr.contains("nope.json: no such file"), "\(missing.stderr)")
        #expect(!missing.stderr.contains("NSCocoaErrorDomain") && !missing.stderr.contains("Usage:"))

        try "{bad".write(toFile: scratch.file("bad.json"), atomically: true, encoding: .utf8)
        let bad = try await OrthusProcess.output(["up", scratch.file("bad.json")])
        #expect(bad.stderr.contains("is not a valid cluster spec: not valid JSON"), "\(bad.stderr)")
        try #"{"model": 3}"#.write(toFile: scratch.file("typed.json"), atomically: true, encoding: .utf8)
        let typed = try await OrthusProcess.output(["up", scratch.file("typed.json")])
        #expect(typed.stderr.contains("field 'model' should be a string"), "\(typed.stderr)")

        let bare = try await OrthusProcess.output([
            "coordinator", "--model", Fixtures.tinyOrthus, "--listen", "127.0.0.1:5955",
        ])
        #expect(bare.status != 0 && bare.stderr.contains("--listen: '127.0.0.1:5955' is not a ZeroMQ endpoint"))
        #expect(bare.stderr.contains("tcp://127.0.0.1:5955"), "\(bare.stderr)")

        let keys = scratch.file("keys")
        let evil = try await OrthusProcess.output(["keys", keys, "--client", "../evil"])
        #expect(evil.status != 0 && evil.stderr.contains("'../evil' is not a usable key name"))
        #expect(!FileManager.default.fileExists(atPath: keys), "a refused keys command wrote \(keys)")

        // An output into a missing folder is refused before any work; flags are blamed as flags, not config.json.
        let lost = try await OrthusProcess.output(
            ["generate", "--model", Fixtures.tinyOrthus, "--prompt", "a cube", "--image-out", scratch.file("no/x.png")]
        )
        #expect(lost.stderr.contains("--image-out") && lost.stderr.contains("does not exist"), "\(lost.stderr)")
        let split = try await OrthusProcess.output(["inspect", Fixtures.tinyOrthus, "--split", "0..<3,2..<4"])
        #expect(split.stderr.contains("--split: ranges must be contiguous") && !split.stderr.contains("config.json"))
        let long = try await OrthusProcess.output(
            ["generate", "--model", Fixtures.tinyOrthus, "--prompt", "hi", "--max-tokens", "100000"]
        )
        #expect(long.status == 0 && long.stderr.contains("beyond the model's context"), "\(long.stderr)")

        let both = try await OrthusProcess.output(
            ["eval", "--model", Fixtures.tinyOrthus, "--coordinator", "tcp://127.0.0.1:5555"]
        )
        #expect(both.status != 0 && both.stderr.contains("give one of them"), "\(both.stderr)")

        let version = try await OrthusProcess.output(["--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("orthus ") && version.stdout.contains("wire protocol"))
        let help = try await OrthusProcess.output(["coordinator", "--help"])
        #expect(!help.stdout.contains("(default: 0)"), "\(help.stdout)")
    }

    /// Without --cfg a command uses the model's own guidance (the bundled model's generation_config.json says 1.5),
    /// not Orthus-7B's 5, which over-guides this model.
    @Test func withoutCfgTheModelsOwnGuidanceIsUsed() async throws {
        let scratch = try ScratchFolder("guidance")
        var pictures: [String: Data] = [:]
        for (name, cfg) in [("default", [String]()), ("1.5", ["--cfg", "1.5"]), ("5", ["--cfg", "5"])] {
            let file = scratch.file("\(name).png")
            let run = try await OrthusProcess.output(
                ["generate", "--model", Fixtures.shapesModel, "--prompt", "a red circle", "--steps", "20"]
                    + ["--image-out", file] + cfg
            )
            #expect(run.status == 0, "\(run.stderr)")
            pictures[name] = try Data(contentsOf: URL(fileURLWithPath: file))
        }
        #expect(pictures["default"] == pictures["1.5"] && pictures["default"] != pictures["5"])
        let help = try await OrthusProcess.output(["eval", "--help"])
        #expect(help.stdout.contains("generation_config.json"), "\(help.stdout)")
    }
}
