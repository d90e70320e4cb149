import Checkpoint
import Foundation
import Generation
import ImageIO
import TestSupport
import Testing

/// The playground page in a real browser: headless Chromium (driven by playground_check.py over the DevTools pipe)
/// opens `GET /` of a gateway that needs an API key, types the key and a prompt, clicks Generate, and sees the
/// picture fill in: partial pictures, then the finished one, byte for byte what `orthus generate` draws.
@Suite(.serialized) struct PlaygroundTests {
    static let script = Fixtures.repository + "/Tests/ClusterTests/playground_check.py"
    static let chromium = "/usr/bin/chromium"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: chromium), "needs chromium (ops/install-deps.sh)"))
    func aBrowserDrawsAPictureThatFillsInPatchByPatch() async throws {
        let scratch = try ScratchFolder("playground")
        let keys = scratch.file("api-keys")
        try "sk-playground\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.start(
            "gateway",
            [
                "serve", "--coordinator", cluster.clients, "--model", cluster.model, "--listen", "127.0.0.1:0",
                "--api-keys", keys,
            ]
        )
        let base = try await cluster.announced("gateway", prefix: "serving ")
        _ = try await cluster.startWorkers(stages: [0..<2, 2..<4])

        let out = scratch.file("browser")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // The reference job "text-to-image": A red cube, seed 7, 20 steps.
        let run = try await OrthusProcess.output(
            command: [
                "/usr/bin/timeout", "120", "python3", Self.script, Self.chromium, base + "/", "A red cube", "7", "20",
                "sk-playground", out,
            ]
        )
        #expect(run.status == 0, "playground_check.py failed: \(run.stderr)")
        let results = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json")))
                as? [String: Any]
        )
        #expect(results["error"] as? String == "", "\(results)")
        #expect(results["prompt"] as? String == "A red cube")
        // One partial picture per patch but the last, then the finished picture.
        let patches = try JobPlanner(directory: try ModelDirectory(path: cluster.model)).patches
        #expect(results["shown"] as? Int == patches, "\(results)")
        #expect(results["progress"] as? String == "done: \(patches) patches")
        #expect((results["cluster"] as? String ?? "").contains("stage 0..<2alive"), "\(results)")

        let reference = scratch.file("reference")
        let jobs = Dictionary(uniqueKeysWithValues: ReferenceJob.all.map { ($0.name, $0) })
        _ = try await jobs["text-to-image"]!.generated(in: reference)
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: out + "/picture.png"))
                == Data(contentsOf: URL(fileURLWithPath: reference + "/image.png"))
        )
        let screenshot = try PNGCodec.read(out + "/screenshot.png")
        #expect(screenshot.width == 1200 && screenshot.height > 300, "\(screenshot.width)x\(screenshot.height)")
    }
}
