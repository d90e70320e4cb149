import Checkpoint
import ClusterClient
import ClusterProtocol
import Foundation
import Generation
import ImageIO
import TestSupport
import Testing
import Wire

/// `orthus serve` from the outside: OpenAI's own Python client (the `openai` package) against the gateway on a local
/// cluster of real processes. Its answers are `orthus generate`'s (text, a generated PNG byte for byte, an interleaved
/// answer's picture), streamed and whole alike, and each refusal has OpenAI's error body and the status its SDK acts
/// on: 401 without the key, 503 before the cluster is ready, 404 for another model, 400 for bad requests and a prompt
/// beyond the context, 429 with Retry-After when the cluster is full.
@Suite(.serialized) struct OpenAIClientTests {
    static let script = Fixtures.repository + "/Tests/ClusterTests/openai_checks.py"
    static let key = "sk-orthus-test"

    @Test(.enabled(if: OpenAIClientTests.hasOpenAI, "needs python3 with the openai package (ops/install-deps.sh)"))
    func theOpenAIClientGetsGeneratesAnswersAndOpenAIErrors() async throws {
        let scratch = try ScratchFolder("gateway")
        let keys = scratch.file("api-keys")
        try "\(Self.key)\n".write(toFile: keys, atomically: true, encoding: .utf8)
        // Two jobs at most: two long jobs fill it for the 429.
        let cluster = try LocalCluster(coordinatorArguments: ["--max-jobs", "2"])
        defer { cluster.stop() }
        try cluster.start(
            "gateway",
            [
                "serve", "--coordinator", cluster.clients, "--model", cluster.model, "--listen", "127.0.0.1:0",
                "--api-keys", keys, "--served-model-name", "orthus-test",
            ]
        )
        let base = try await cluster.announced("gateway", prefix: "serving ")

        // Before any worker: no key, a wrong key, then the right key on a cluster that is not ready.
        #expect(try await Self.refusal(base, key: "sk-wrong")["status"] as? Int == 401)
        let notReady = try await Self.refusal(base, key: Self.key)
        #expect(notReady["status"] as? Int == 503 && notReady["code"] as? String == "cluster_not_ready")
        #expect(notReady["retry_after"] as? String != nil)

        _ = try await cluster.startWorkers(stages: [0..<2, 2..<4])
        let planner = try JobPlanner(directory: try ModelDirectory(path: cluster.model))
        let side = planner.configuration.vqConfig?.resolution ?? 512
        let out = scratch.file("answers")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let requests: [String: Any] = [
            "question": [
                "prompt": "What is in the picture?", "picture": Fixtures.image("landscape-37x23"), "max_tokens": 12,
            ],
            "image": [
                "prompt": "A red cube", "seed": 7, "steps": 20, "size": "\(side)x\(side)", "partial_images": 2,
            ],
            "interleaved": [
                "prompt": "Draw picture number 0 and tell me about it.", "max_tokens": 60, "steps": 10,
                "temperature": 0,
            ],
        ]
        try JSONSerialization.data(withJSONObject: requests).write(to: URL(fileURLWithPath: out + "/requests.json"))
        let run = try await OrthusProcess.output(
            command: ["/usr/bin/env", "python3", Self.script, "answers", base, "orthus-test", Self.key, out]
        )
        #expect(run.status == 0, "openai_checks.py failed: \(run.stderr)")
        let results = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json")))
                as? [String: Any]
        )

        // The same answers as generate.
        let references = Dictionary(uniqueKeysWithValues: ReferenceJob.all.map { ($0.name, $0) })
        let question = try await references["image-to-text"]!.generated(in: scratch.file("ref-question"))
        let whole = results["question"] as? [String: Any]
        let streamed = results["question_streamed"] as? [String: Any]
        let expectedText = question.stdout.trimmingCharacters(in: .newlines)
        #expect(whole?["content"] as? String == expectedText)
        #expect(streamed?["content"] as? String == expectedText && (streamed?["chunks"] as? Int ?? 0) > 1)
        // (The client's usage object has more fields, empty here.)
        func counts(_ usage: Any?) -> [Int?] {
            let fields = usage as? [String: Any]
            return ["prompt_tokens", "completion_tokens", "total_tokens"].map { fields?[$0] as? Int }
        }
        let usage = counts(whole?["usage"])
        #expect((usage[0] ?? 0) > planner.patches && usage[1] == 12 && usage[2] == (usage[0] ?? 0) + 12, "\(usage)")
        #expect(whole?["finish_reason"] as? String == "length" && counts(streamed?["usage"]) == usage)
        #expect(streamed?["finish_reason"] as? String == "length")

        let image = scratch.file("ref-image")
        _ = try await references["text-to-image"]!.generated(in: image)
        let expectedPNG = try Data(contentsOf: URL(fileURLWithPath: image + "/image.png"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/generated.png")) == expectedPNG)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/linked.png")) == expectedPNG)
        try Self.checkStreamedImage(results["image_streamed"], in: out, expected: expectedPNG, planner: planner)

        let story = scratch.file("ref-story")
        _ = try await references["interleaved"]!.generated(in: story)
        let pictures = try FileManager.default.contentsOfDirectory(atPath: story + "/answer").filter {
            $0.hasSuffix(".png")
        }
        let parts = (results["interleaved"] as? [String: Any])?["parts"] as? [[String: String]] ?? []
        let received = parts.compactMap { $0["image"] }
        #expect(received.count == pictures.count && !received.isEmpty)
        for (got, want) in zip(received.sorted(), pictures.sorted()) {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: out + "/" + got))
                    == Data(contentsOf: URL(fileURLWithPath: story + "/answer/" + want))
            )
        }
        // Streamed, the same parts in the same order: text runs, then each picture byte for byte.
        let streamedStory = results["interleaved_streamed"] as? [String: Any]
        let streamedParts = streamedStory?["parts"] as? [[String: String]] ?? []
        #expect(streamedParts.map { $0["text"] } == parts.map { $0["text"] }, "\(streamedParts) against \(parts)")
        for (got, want) in zip(streamedParts.compactMap { $0["image"] }, received) {
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: out + "/" + got))
                    == Data(contentsOf: URL(fileURLWithPath: out + "/" + want))
            )
        }
        #expect(streamedParts.compactMap { $0["image"] }.count == received.count)
        #expect(streamedStory?["finish_reason"] as? String != nil)
        #expect(results["models"] as? [String] == ["orthus-test"])

        // Refusals: status, code and parameter as OpenAI's clients expect them.
        let errors = results["errors"] as? [String: [String: Any]] ?? [:]
        func check(_ name: String, _ status: Int, code: String? = nil, param: String? = nil) {
            let error = errors[name] ?? [:]
            #expect(error["status"] as? Int == status, "\(name): \(error)")
            if let code { #expect(error["code"] as? String == code, "\(name): \(error)") }
            if let param { #expect(error["param"] as? String == param, "\(name): \(error)") }
            #expect(!(error["message"] as? String ?? "").isEmpty, "\(name) has no message")
        }
        check("unknown_model", 404, code: "model_not_found", param: "model")
        check("wrong_size", 400, param: "size")
        check("too_many_partials", 400, param: "partial_images")
        check("remote_image", 400, code: "invalid_image_url")
        check("context", 400, code: "context_length_exceeded")
        check("bad_temperature", 400, param: "temperature")
        check("bad_json", 400)

        // A full cluster: two long jobs hold both places; the client is told to come back.
        let client = try ClusterClient(endpoint: cluster.clients)
        let long = JobSpec(mode: .textToImage, prompt: "A red cube", maxTokens: 0, steps: 1000)
        let holders = try (0..<2).map { _ in try client.submit(long, acceptTimeout: .seconds(10)) }
        var held: [UInt64] = []
        for holder in holders {
            var iterator = holder.makeAsyncIterator()
            if case .accepted(let id, _, _)? = try await iterator.next() { held.append(id) }
        }
        let full = try await Self.refusal(base, key: Self.key)
        #expect(full["status"] as? Int == 429 && full["code"] as? String == "cluster_full", "\(full)")
        #expect(full["retry_after"] as? String == "1")
        for (holder, id) in zip(holders, held) { try holder.cancel(job: id) }
        _ = try await cluster.waitFor("the held jobs cancelled") { $0.jobs.isEmpty }
        for holder in holders { holder.close() }

        // A running job through the gateway's job routes: its state, its progress as events, its cancellation.
        let running = try await Self.running(client, long)
        let job = try await OrthusProcess.output(
            command: ["/usr/bin/env", "python3", Self.script, "job", base, Self.key, "\(running)"]
        )
        #expect(job.status == 0, "openai_checks.py job failed: \(job.stderr)")
        let found = try JSONSerialization.jsonObject(with: Data(job.stdout.utf8)) as? [String: Any] ?? [:]
        let state = found["state"] as? [String: Any]
        #expect(state?["status"] as? Int == 200 && state?["mode"] as? String == "textToImage", "\(found)")
        #expect(found["events_type"] as? String == "text/event-stream")
        let events = found["events"] as? [[String: Any]] ?? []
        #expect(events.count == 3 && events.allSatisfy { $0["type"] as? String == "patches" }, "\(events)")
        #expect((found["delete"] as? [String: Any])?["status"] as? Int == 200, "\(found)")
        #expect((found["after"] as? [String: Any])?["status"] as? Int == 404, "\(found)")
        #expect((found["malformed"] as? [String: Any])?["status"] as? Int == 400, "\(found)")
    }

    /// A streamed image generation with two partial images: after a third and two thirds of the patches, each the
    /// patches so far with the rest blank; then the finished image, byte for byte `generate`'s.
    static func checkStreamedImage(_ found: Any?, in out: String, expected: Data, planner: JobPlanner) throws {
        let events = found as? [[String: Any]] ?? []
        #expect(
            events.map { $0["type"] as? String ?? "" } == [
                "image_generation.partial_image", "image_generation.partial_image", "image_generation.completed",
            ],
            "\(events)"
        )
        #expect(events.map { $0["index"] as? Int } == [0, 1, nil])
        guard events.count == 3 else { return }
        let files = events.map { out + "/" + ($0["file"] as? String ?? "") }
        #expect(try Data(contentsOf: URL(fileURLWithPath: files[2])) == expected)
        #expect(events[2]["output_tokens"] as? Int == planner.patches)
        // Blank patches: a partial image's share of the blank grey shrinks as patches come, and the last of the
        // grid is blank in both (raster order).
        // (Read back as RGBA: the colour is the first three bytes of a pixel.)
        func blank(_ image: Image8) -> Double {
            let pixels = stride(from: 0, to: image.pixels.count, by: image.channels).filter { start in
                image.pixels[start..<(start + 3)].allSatisfy { $0 == 0xE0 }
            }
            return Double(pixels.count) / Double(image.width * image.height)
        }
        let first = try PNGCodec.read(files[0])
        let second = try PNGCodec.read(files[1])
        let final = try PNGCodec.read(files[2])
        #expect(first.width == final.width && first.height == final.height)
        let shares = [blank(first), blank(second), blank(final)]
        #expect(shares[0] > shares[1] && shares[1] > 0.2 && shares[2] < 0.05, "\(shares)")
        #expect(first.pixels.suffix(first.channels).prefix(3).allSatisfy { $0 == 0xE0 })
    }

    /// Submits a job and returns its id once it is running.
    static func running(_ client: ClusterClient, _ spec: JobSpec) async throws -> UInt64 {
        let stream = try client.submit(spec, acceptTimeout: .seconds(10))
        for try await message in stream {
            if case .accepted(let id, _, _) = message {
                // The stream stays open in a task: its connection follows the job until the gateway cancels it.
                Task { for try await _ in stream {} }
                return id
            }
        }
        throw ClusterError("the job was not accepted")
    }

    static var hasOpenAI: Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import openai"]
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return false  // no python3: the test is skipped, with the reason in its trait
        }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// One chat request through the openai client; its refusal.
    static func refusal(_ base: String, key: String) async throws -> [String: Any] {
        let run = try await OrthusProcess.output(
            command: ["/usr/bin/env", "python3", script, "refusal", base, "orthus-test", key]
        )
        guard run.status == 0 else { throw ClusterError("openai_checks.py refusal failed: \(run.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any] ?? [:]
    }
}
