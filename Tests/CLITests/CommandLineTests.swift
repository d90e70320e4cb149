import Checkpoint
import Engine
import Foundation
import Generation
import Heads
import Tensor
import TestSupport
import Testing
import Tokenizer

/// The `orthus` executable, run as users run it.
@Suite struct CommandLineTests {
    let orthus = Fixtures.root + "/tiny-orthus"
    let chameleon = Fixtures.root + "/tiny-chameleon-gqa"

    let scratch = try! ScratchFolder("cli")

    func temporary(_ name: String) -> String { scratch.file(name) }

    @Test func logitsWritesNumpyFilesThatMatchTransformers() throws {
        struct Record: Decodable { struct P: Decodable { let ids: [Int] }; let prompts: [String: P] }
        let record = try JSONDecoder().decode(
            Record.self,
            from: Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/goldens/tiny-orthus.json"))
        )
        let ids = record.prompts["p7"]!.ids
        let logitsPath = temporary("logits.npy")
        let hiddenPath = temporary("hidden.npy")
        let result = try OrthusProcess.run([
            "logits", "--model", orthus, "--ids", ids.map(String.init).joined(separator: ","), "--out", logitsPath,
            "--hidden-out", hiddenPath,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        for (path, golden) in [(logitsPath, "tiny-orthus-p7-logits.npy"), (hiddenPath, "tiny-orthus-p7-hidden.npy")] {
            let ours = try NumpyFile.read(path)
            let reference = try NumpyFile.read(Fixtures.root + "/goldens/" + golden)
            #expect(ours.shape == reference.shape)
            let scale = reference.values.map(abs).max()!
            let worst = zip(ours.values, reference.values).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-3 * scale)
        }
    }

    @Test(arguments: ["tiny-orthus", "tiny-chameleon-gqa"])
    func generateStreamsTheTextOfTheEnginesGreedyTokens(model: String) throws {
        let path = Fixtures.root + "/" + model
        let prompt = "A red circle on the left"
        let result = try OrthusProcess.run(["generate", "--model", path, "--prompt", prompt, "--max-tokens", "12"])
        #expect(result.status == 0, "\(result.stderr)")

        // The same request in process: BOS + prompt + SEP, text-only mask, stop on SEP/EOS, greedy.
        let directory = try ModelDirectory(path: path)
        let engine = try LocalEngine(directory: directory)
        let planner = engine.planner
        let ids = try planner.promptIDs(prompt)
        #expect(ids.first == 0 && ids.last == 8710)
        let answer = try engine.run(LocalEngine.Job(GenerationRequest(mode: .text, prompt: prompt, maxTokens: 12)))
        let special = planner.special
        #expect(!answer.tokens.contains { special.imageCodes.contains($0) || $0 == special.boi || $0 == special.eoi })
        #expect(result.stdout == (try engine.tokenizer.decode(answer.tokens)) + "\n")
    }

    @Test func seededSamplingIsReproducibleAndTheSeedMatters() throws {
        let arguments = [
            "generate", "--model", orthus, "--prompt", "hello", "--max-tokens", "16", "--temperature", "1", "--top-k",
            "50",
        ]
        let a = try OrthusProcess.run(arguments + ["--seed", "1"])
        let b = try OrthusProcess.run(arguments + ["--seed", "1"])
        let c = try OrthusProcess.run(arguments + ["--seed", "2"])
        #expect(a.status == 0 && a.stdout == b.stdout)
        #expect(a.stdout != c.stdout)
    }

    @Test func inspectReportsComponentsAndStageMemory() throws {
        let result = try OrthusProcess.run(["inspect", orthus, "--split", "0..<1,1..<4"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("tensors: 245 in 2 file(s)"))
        #expect(result.stdout.contains("diffusion head (mlp_head)"))
        #expect(result.stdout.contains("0: layers 0..<1") && result.stdout.contains("1: layers 1..<4"))
    }

    @Test func badArgumentsFailWithAMessageNamingTheProblem() throws {
        let badID = try OrthusProcess.run(["logits", "--model", orthus, "--ids", "0,abc", "--out", temporary("x.npy")])
        #expect(badID.status != 0 && badID.stderr.contains("'abc'"))
        let outOfRange = try OrthusProcess.run([
            "logits", "--model", orthus, "--ids", "0,99999", "--out", temporary("x.npy"),
        ])
        #expect(outOfRange.status != 0 && outOfRange.stderr.contains("99999"))
        let noModel = try OrthusProcess.run(["generate", "--model", "/nonexistent/model", "--prompt", "x"])
        #expect(noModel.status != 0 && noModel.stderr.contains("/nonexistent/model"))
        let badSplit = try OrthusProcess.run(["inspect", orthus, "--split", "0..<2,3..<4"])
        #expect(badSplit.status != 0 && badSplit.stderr.contains("contiguous"))
    }
}

/// Without keys nobody is proven, so the roles' sockets stay on loopback unless the operator accepts the exposure.
@Suite struct ExposureCommandTests {
    let model = Fixtures.root + "/tiny-orthus"

    @Test func unkeyedSocketsBeyondLoopbackAreRefusedWithoutInsecure() async throws {
        let coordinator = try OrthusProcess.run([
            "coordinator", "--model", model, "--listen", "tcp://*:0", "--workers", "tcp://127.0.0.1:0",
        ])
        #expect(coordinator.status != 0 && coordinator.stderr.contains("tcp://*:0 would listen beyond this host"))
        let stage = try OrthusProcess.run([
            "stage", "--coordinator", "tcp://127.0.0.1:1", "--model", model, "--layers", "0..<2", "--listen",
            "tcp://0.0.0.0:0", "--join-timeout", "0.2",
        ])
        #expect(stage.status != 0 && stage.stderr.contains("--insecure"), "\(stage.stderr)")
        // With --insecure the stage starts (and says so loudly) and then fails only to find its coordinator.
        let insecure = try OrthusProcess.run([
            "stage", "--coordinator", "tcp://127.0.0.1:1", "--model", model, "--layers", "0..<2", "--listen",
            "tcp://0.0.0.0:0", "--join-timeout", "0.2", "--insecure",
        ])
        #expect(insecure.stderr.contains("WARNING") && insecure.stderr.contains("no answer from the coordinator"))
    }
}
