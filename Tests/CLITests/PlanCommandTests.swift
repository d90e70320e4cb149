import ClusterLauncher
import Foundation
import TestSupport
import Testing

/// `orthus profile` then `orthus plan` as a user runs them: a profile of this machine with the test checkpoint, a
/// hosts file naming it, a plan that covers every layer and writes a spec `orthus up` accepts; a host too small is
/// told how much it lacks.
@Suite struct PlanCommandTests {
    @Test func aProfiledHostIsPlannedAndItsSpecIsOneUpAccepts() async throws {
        let scratch = try ScratchFolder("plan")
        let profiled = try await OrthusProcess.output([
            "profile", "--model", Fixtures.tinyOrthus, "--out", scratch.file("host.json"),
        ])
        #expect(profiled.status == 0, "\(profiled.stderr)")
        let profile = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.file("host.json"))))
                as? [String: Any]
        )
        let layers = profile["layerSeconds"] as? [String: Double] ?? [:]
        #expect(Set(layers.keys) == ["1", "4", "16"] && layers.values.allSatisfy { $0 > 0 }, "\(profile)")
        for key in ["lmHeadSecondsPerRow", "diffusionSecondsPerRowStep", "vqDecodeSeconds", "readBytesPerSecond"] {
            #expect((profile[key] as? Double ?? 0) > 0, "\(key): \(profile[key] ?? "none")")
        }

        try #"[{"name": "here", "address": "127.0.0.1", "profile": "host.json"}]"#.write(
            toFile: scratch.file("hosts.json"),
            atomically: true,
            encoding: .utf8
        )
        let planned = try await OrthusProcess.output([
            "plan", "--model", Fixtures.tinyOrthus, "--hosts", scratch.file("hosts.json"), "--sequences", "2",
            "--spec-out", scratch.file("spec.json"),
        ])
        #expect(planned.status == 0, "\(planned.stderr)")
        #expect(
            planned.stdout.contains("layers 0..<4  on here") && planned.stdout.contains("tokens/s"),
            "\(planned.stdout)"
        )
        // The spec is one `orthus up` reads and accepts.
        let spec = try ClusterSpec.load(scratch.file("spec.json"))
        #expect(spec.stages.map(\.layers) == ["0..<4"] && spec.lmHeads.count == 1 && !spec.diffusionHeads.isEmpty)

        try #"[{"name": "tiny", "memoryGB": 0.01, "profile": "host.json"}]"#.write(
            toFile: scratch.file("small.json"),
            atomically: true,
            encoding: .utf8
        )
        let small = try await OrthusProcess.output([
            "plan", "--model", Fixtures.tinyOrthus, "--hosts", scratch.file("small.json"),
        ])
        #expect(small.status != 0 && small.stderr.contains("leaves tiny") && small.stderr.contains("MiB short"))
        #expect(!small.stderr.contains("Usage:"), "\(small.stderr)")
    }

    /// `orthus plan --check` runs each configuration through real processes and the simulation; the numbers are
    /// measurements (the README's table), so only their presence is checked here, and that the 20 ms proxy on the
    /// stage link really holds every token back at least that long.
    @Test func theCheckRunsEveryConfigurationThroughRealProcessesAndTheSimulation() async throws {
        let run = try await OrthusProcess.output([
            "plan", "--model", Fixtures.tinyOrthus, "--check", "--check-jobs", "2", "--check-tokens", "4",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let rows = run.stdout.split(separator: "\n").dropFirst(2).map { $0.split(separator: " ").suffix(5) }
        #expect(rows.count == 6, "\(run.stdout)")
        let numbers = rows.map { $0.compactMap { Double($0) } }
        #expect(numbers.allSatisfy { $0.count == 5 && $0.allSatisfy { $0 > 0 } }, "\(run.stdout)")
        #expect((numbers.last?[4] ?? 0) >= 20, "measured ms/token through the delayed link: \(run.stdout)")
    }
}
