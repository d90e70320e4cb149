import Foundation
import TestSupport
import Testing

/// `orthus generate --prompts FILE`: requests of every mode run together in one process give what each gives alone.
@Suite struct BatchGenerateTests {
    let model = Fixtures.root + "/tiny-orthus"
    let scratch = try! ScratchFolder("batch")

    struct Outcome: Decodable, Equatable {
        var line: Int
        var text: String?
        var tokens: Int?
        var finish: String?
        var files: [String]?
        var error: String?
    }

    @Test func requestsRunTogetherGiveWhatEachGivesAloneAndABadLineFailsAlone() throws {
        let picture = Fixtures.image("landscape-37x23")
        let lines = [
            #"{"prompt": "A red circle on the left", "max_tokens": 12}"#,
            #"{"prompt": "a cat", "image_out": "\#(scratch.file("batch-cat.png"))", "seed": 3, "steps": 20}"#,
            #"{"prompt": "hello", "max-tokens": 9, "temperature": 1, "top_k": 50, "seed": 7}"#,
            #"{"prompt": "What is in the picture?", "image": "\#(picture)", "max_tokens": 6}"#,
            #"{"prompt": "tell a story", "interleaved": true, "out_dir": "\#(scratch.file("batch-story"))", "max_tokens": 40, "steps": 10, "seed": 2}"#,
            #"{"prompt": "x", "top_p": 2}"#,
            "",
            #"{"prompt": "a dog", "image_out": "\#(scratch.file("batch-dog.png"))", "seed": 4, "steps": 20, "cfg": 3}"#,
        ]
        let file = scratch.file("prompts.jsonl")
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let batch = try OrthusProcess.run(["generate", "--model", model, "--prompts", file])
        #expect(batch.status != 0, "one line is bad, so the command reports a failure")
        #expect(batch.stderr.contains("1 of 7 request(s)"), "\(batch.stderr)")
        let outcomes = try batch.stdout.split(separator: "\n").map {
            try JSONDecoder().decode(Outcome.self, from: Data($0.utf8))
        }
        #expect(outcomes.map(\.line) == [1, 2, 3, 4, 5, 6, 8])
        #expect(outcomes[5].error?.contains("--top-p must be in (0, 1]") == true, "\(outcomes[5])")

        // Each request alone, through the same command.
        func alone(_ arguments: [String]) throws -> String {
            let result = try OrthusProcess.run(["generate", "--model", model] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }
        #expect(try alone(["--prompt", "A red circle on the left", "--max-tokens", "12"]) == outcomes[0].text! + "\n")
        let sampled = ["--prompt", "hello", "--max-tokens", "9", "--temperature", "1", "--top-k", "50", "--seed", "7"]
        #expect(try alone(sampled) == outcomes[2].text! + "\n")
        let question = ["--prompt", "What is in the picture?", "--image", picture, "--max-tokens", "6"]
        #expect(try alone(question) == outcomes[3].text! + "\n")
        for (name, prompt, seed, cfg) in [("cat", "a cat", "3", "5"), ("dog", "a dog", "4", "3")] {
            let single = scratch.file("alone-\(name).png")
            _ = try alone(["--prompt", prompt, "--image-out", single, "--seed", seed, "--steps", "20", "--cfg", cfg])
            let together = try Data(contentsOf: URL(fileURLWithPath: scratch.file("batch-\(name).png")))
            #expect(try Data(contentsOf: URL(fileURLWithPath: single)) == together, "\(name)")
        }
        let story = scratch.file("alone-story")
        let storyArguments = ["--prompt", "tell a story", "--interleaved", "--out-dir", story, "--max-tokens", "40"]
        _ = try alone(storyArguments + ["--steps", "10", "--seed", "2"])
        let files = try FileManager.default.contentsOfDirectory(atPath: story).sorted()
        #expect(files == (try FileManager.default.contentsOfDirectory(atPath: scratch.file("batch-story")).sorted()))
        for name in files where name.hasSuffix(".png") {
            let a = try Data(contentsOf: URL(fileURLWithPath: story + "/" + name))
            let b = try Data(contentsOf: URL(fileURLWithPath: scratch.file("batch-story/" + name)))
            #expect(a == b, "\(name)")
        }
    }
}
