import ClusterProtocol
import Foundation
import Membership
import TestSupport
import Testing

/// Scaling the diffusion pool at run time: a worker added while image jobs run starts receiving patches; one stopped
/// with SIGTERM drains (finishes what it received, takes nothing new, leaves) and no work is lost.
@Suite struct DiffusionScalingTests {
    /// Long enough (1000 DDIM steps per patch) that the jobs are still running while workers come and go.
    static func imageJob(_ seed: Int) -> ReferenceJob {
        ReferenceJob(
            name: "image-\(seed)",
            options: [
                "--prompt", "A blue sphere number \(seed)", "--image-out", "{out}/image.png", "--latents-out",
                "{out}/latents.npy", "--steps", "1000", "--seed", "\(seed)",
            ],
            files: ["image.png", "latents.npy"]
        )
    }

    @Test func anAddedWorkerGetsWorkAndADrainedOneLosesNothing() async throws {
        let jobs = (1...4).map(Self.imageJob)
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.stage("stage", layers: 0..<4)
        try cluster.lmHead("lm")
        let first = try cluster.diffusionHead("diffusion-1")
        _ = try await cluster.waitFor("a ready cluster") { $0.ready }

        let submissions = Task {
            try await withThrowingTaskGroup(of: (ReferenceJob, OrthusProcess.Output, String).self) { group in
                for job in jobs {
                    let out = cluster.folder + "/" + job.name
                    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                    group.addTask { (job, try await cluster.submit(job.arguments(out: out)), out) }
                }
                var all: [(ReferenceJob, OrthusProcess.Output, String)] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
        }
        _ = try await cluster.waitFor("image jobs under way") { report in report.jobs.contains { $0.patches > 0 } }

        // A second worker joins mid-run and is handed patches.
        try cluster.diffusionHead("diffusion-2")
        let busy = try await cluster.waitFor("the new worker to hold work") { report in
            let workers = report.members.filter { $0.role == "diffusion-head" }.sorted { $0.id < $1.id }
            return workers.count == 2 && workers[1].outstanding > 0
        }
        #expect(busy.jobs.count == jobs.count, "every job should still be running when the new worker takes work")
        let workerIDs = busy.members.filter { $0.role == "diffusion-head" }.map(\.id).sorted()

        // The first worker is asked to stop: it drains and exits cleanly while the jobs carry on.
        first.terminate()
        let deadline = Date().addingTimeInterval(60)
        while first.isRunning, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!first.isRunning && first.terminationStatus == 0)
        #expect(cluster.log("diffusion-1").contains("draining"))

        let outcomes = try await submissions.value
        for (job, result, out) in outcomes {
            #expect(result.status == 0, "\(job.name): \(result.stderr)")
            let reference = try await job.generated(in: cluster.folder + "/reference-" + job.name)
            #expect(
                ReferenceJob.Outcome(job: job, folder: out, stdout: result.stdout) == reference,
                "\(job.name) differs from generate"
            )
        }
        let report = try await cluster.status()
        // The drained worker is listed as down until the coordinator forgets it (a minute after it left; on a slow
        // host the jobs can outlast that), so it may be down or gone, but never alive.
        let states = Dictionary(
            uniqueKeysWithValues: report.members.filter { $0.role == "diffusion-head" }.map { ($0.id, $0.state) }
        )
        #expect(states[workerIDs[1]] == "alive")
        #expect(states[workerIDs[0]] == "down" || states[workerIDs[0]] == nil, "the drained worker: \(states)")
        #expect(Set(states.keys).isSubset(of: Set(workerIDs)), "no other diffusion worker: \(states)")
        #expect(report.completedJobs == jobs.count && report.failedJobs == 0)
        #expect(cluster.log("diffusion-2").contains("diffusion-head registered"))
    }

    /// A drain the coordinator cannot confirm (it is gone, as when a whole deployment is stopped at once) ends by
    /// itself once the worker stops waiting for the confirmation, and at once on a second SIGTERM; neither waits for a
    /// SIGKILL. Neither worker held work, so both exit with status 0.
    @Test func aDrainWithTheCoordinatorGoneEndsByItselfOrOnASecondSignal() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.stage("stage", layers: 0..<4)
        try cluster.lmHead("lm")
        let waiting = try cluster.diffusionHead("diffusion-waits")
        let signalled = try cluster.diffusionHead("diffusion-signalled")
        _ = try await cluster.waitFor("a ready cluster") { $0.ready && $0.members.count == 4 }
        cluster.processes.kill("coordinator")

        let stopped = ContinuousClock.now
        waiting.terminate()
        signalled.terminate()
        let drainDeadline = stopped + .seconds(5)
        while !cluster.log("diffusion-signalled").contains("draining"), ContinuousClock.now < drainDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(signalled.processIdentifier, SIGTERM)
        let deadline = stopped + .seconds(30)
        while waiting.isRunning || signalled.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = ContinuousClock.now - stopped
        for (worker, name) in [(waiting, "diffusion-waits"), (signalled, "diffusion-signalled")] {
            #expect(!worker.isRunning && worker.terminationStatus == 0, "\(name): \(cluster.log(name).suffix(1000))")
        }
        #expect(
            cluster.log("diffusion-waits").contains("the coordinator did not confirm the drain"),
            "\(cluster.log("diffusion-waits").suffix(1000))"
        )
        #expect(cluster.log("diffusion-signalled").contains("a second signal: leaving without finishing 0 request(s)"))
        #expect(elapsed >= WorkerSession.drainConfirmationTimeout, "the unconfirmed drain ended after \(elapsed)")
    }
}
