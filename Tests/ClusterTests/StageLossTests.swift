import ClusterProtocol
import Foundation
import TestSupport
import Testing

/// A stage that leaves takes its KV caches with it. The coordinator holds every sequence's inputs, so when a
/// replacement for the same layers registers, it replays them onto the new pipeline and the jobs finish exactly as an
/// undisturbed run would; without a replacement they fail after the replay timeout, naming the lost stage.
@Suite struct StageLossTests {
    static let image = ReferenceJob(
        name: "replayed-image",
        options: [
            "--prompt", "A long image", "--image-out", "{out}/image.png", "--latents-out", "{out}/latents.npy",
            "--steps", "1000", "--seed", "5",
        ],
        files: ["image.png", "latents.npy"]
    )

    func twoStageCluster(_ arguments: [String] = []) async throws -> LocalCluster {
        let cluster = try LocalCluster(coordinatorArguments: arguments)
        try await cluster.startWorkers(stages: [0..<2, 2..<4])
        return cluster
    }

    @Test func aReplacementStageGetsTheJobsReplayedAndTheyFinishAsIfNothingHappened() async throws {
        let cluster = try await twoStageCluster()
        defer { cluster.stop() }
        let out = cluster.folder + "/replayed"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let running = Task { try await cluster.submit(Self.image.arguments(out: out)) }
        _ = try await cluster.waitFor("the image job under way") { report in report.jobs.contains { $0.patches > 0 } }
        let lost = try #require(cluster.process("stage-1"))
        lost.terminate()
        _ = try await cluster.waitFor("the pipeline to break") { !$0.ready }
        try cluster.stage("stage-1b", layers: 2..<4)
        let result = try await running.value
        #expect(result.status == 0, "\(result.stderr)")

        let reference = try await Self.image.generated(in: cluster.folder + "/reference")
        #expect(ReferenceJob.Outcome(job: Self.image, folder: out, stdout: result.stdout) == reference)
        #expect(cluster.log("coordinator").contains("replaying 1 job(s) onto the new pipeline"))
        let report = try await cluster.status()
        #expect(report.completedJobs == 1 && report.failedJobs == 0)
    }

    @Test func withoutAReplacementTheJobsFailAfterTheReplayTimeoutNamingTheStage() async throws {
        let cluster = try await twoStageCluster(["--replay-timeout", "1"])
        defer { cluster.stop() }
        let running = Task {
            try await cluster.submit([
                "--prompt", "A long image", "--image-out", cluster.folder + "/x.png", "--steps", "1000",
            ])
        }
        _ = try await cluster.waitFor("the image job under way") { report in report.jobs.contains { $0.patches > 0 } }
        try #require(cluster.process("stage-1")).terminate()
        let failed = try await running.value
        #expect(
            failed.status != 0 && failed.stderr.contains("layers 2..<4") && failed.stderr.contains("no replacement")
        )

        // A replacement restores service for new jobs.
        try cluster.stage("stage-1b", layers: 2..<4)
        _ = try await cluster.waitFor("a new pipeline") { $0.ready }
        let text = ReferenceJob.all[0]
        let result = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(result.status == 0 && result.stdout == ReferenceJob.expected[text.name]?.stdout)
    }
}
