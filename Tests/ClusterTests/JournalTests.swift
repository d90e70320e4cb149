import ClusterProtocol
import Foundation
import TestSupport
import Testing

/// A coordinator with a journal survives a crash: the workers register again by themselves, the job that was running
/// is run again from its journaled spec (same seed, same output), and `fetch` serves it and an earlier finished job.
@Suite struct JournalTests {
    @Test func aCrashedCoordinatorRestartsItsJobsAndServesFinishedResults() async throws {
        let scratch = try ScratchFolder("journal")
        let journal = scratch.path
        let cluster = try LocalCluster(coordinatorArguments: ["--journal", journal])
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<2, 2..<4])

        let text = ReferenceJob.all[0]
        let first = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(first.status == 0 && first.stderr.contains("job 1 accepted"))

        // Job 2 is under way when the coordinator dies; its client dies with it.
        let image = StageLossTests.image
        // (Its output folder exists: submit checks where it will write before it sends anything.)
        try FileManager.default.createDirectory(atPath: cluster.folder + "/lost", withIntermediateDirectories: true)
        let client = try cluster.start(
            "client",
            ["submit", "--coordinator", cluster.clients] + image.arguments(out: cluster.folder + "/lost")
        )
        _ = try await cluster.waitFor("job 2 under way") { report in report.jobs.contains { $0.patches > 0 } }
        try cluster.restartCoordinator(["--journal", journal], name: "coordinator-2")
        client.terminate()

        // The workers notice (their heartbeats are refused) and register with the new coordinator.
        let ready = try await cluster.waitFor("the workers to return") { $0.ready && $0.members.count == 4 }
        #expect(ready.pipeline.count == 2)
        let out = cluster.folder + "/fetched"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let fetched = try await OrthusProcess.output(
            [
                "fetch", "--coordinator", cluster.clients, "--job", "2", "--image-out", out + "/image.png",
                "--latents-out", out + "/latents.npy",
            ]
        )
        #expect(fetched.status == 0, "\(fetched.stderr)")
        let reference = try await image.generated(in: cluster.folder + "/reference")
        #expect(ReferenceJob.Outcome(job: image, folder: out, stdout: reference.stdout) == reference)

        // Job 1 finished before the crash: its text comes from the journal.
        let old = try await OrthusProcess.output(["fetch", "--coordinator", cluster.clients, "--job", "1"])
        #expect(old.status == 0 && old.stdout == ReferenceJob.expected[text.name]?.stdout)
        let unknown = try await OrthusProcess.output(["fetch", "--coordinator", cluster.clients, "--job", "99"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no job 99"))
        // New jobs continue the numbering.
        let next = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(next.status == 0 && next.stderr.contains("job 3 accepted"))
        #expect(cluster.log("coordinator-2").contains("journal: 2 job(s), 1 restarted"))
    }
}
