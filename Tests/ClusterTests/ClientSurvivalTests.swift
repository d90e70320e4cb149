import ClusterProtocol
import Foundation
import TestSupport
import Testing
import Transport

/// A client outlives its coordinator: `submit` notices that a journaled coordinator restarted under its running job,
/// follows the job again and writes generate's output; against a coordinator that stays dead it gives up after its
/// re-attach time with the reason, and Ctrl-C exits within about 2 s even with nobody to confirm the cancel.
@Suite struct ClientSurvivalTests {
    @Test func submitFollowsItsJobAcrossARestartAndGivesUpOnADeadCoordinator() async throws {
        let scratch = try ScratchFolder("survival")
        let journal = scratch.file("journal")
        let cluster = try LocalCluster(coordinatorArguments: ["--journal", journal])
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<2, 2..<4])

        // A long image job; the coordinator is killed under it and restarted with its journal.
        let image = StageLossTests.image
        let out = scratch.file("followed")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let log = scratch.file("submit.log")
        let submit = try OrthusProcess.start(
            ["submit", "--coordinator", cluster.clients] + image.arguments(out: out),
            log: log
        )
        _ = try await cluster.waitFor("the job under way") { report in report.jobs.contains { $0.patches > 0 } }
        try cluster.restartCoordinator(["--journal", journal], name: "coordinator-2")
        let restarted = ContinuousClock.now
        while submit.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let followed = ContinuousClock.now - restarted
        let said = try String(contentsOfFile: log, encoding: .utf8)
        #expect(submit.terminationStatus == 0, "\(said)")
        #expect(said.contains("restarted") || said.contains("silent"), "\(said)")
        #expect(said.contains("following job 1 again"), "\(said)")
        #expect(followed < .seconds(60), "the job took \(followed) to finish after the restart")
        let reference = try await image.generated(in: scratch.file("reference"))
        #expect(ReferenceJob.Outcome(job: image, folder: out, stdout: reference.stdout) == reference)

        // The coordinator dies for good: a running submit says so and gives up after its re-attach time.
        let doomed = scratch.file("doomed.log")
        try FileManager.default.createDirectory(atPath: scratch.file("never"), withIntermediateDirectories: true)
        let orphan = try OrthusProcess.start(
            ["submit", "--coordinator", cluster.clients, "--reattach-timeout", "2"]
                + image.arguments(out: scratch.file("never")),
            log: doomed
        )
        _ = try await cluster.waitFor("the second job under way") { report in report.jobs.contains { $0.patches > 0 } }
        cluster.processes.kill("coordinator")
        let killed = ContinuousClock.now
        while orphan.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let gaveUp = ContinuousClock.now - killed
        let orphanSaid = try String(contentsOfFile: doomed, encoding: .utf8)
        #expect(orphan.terminationStatus != 0 && orphanSaid.contains("did not come back"), "\(orphanSaid)")
        #expect(gaveUp < .seconds(15), "submit took \(gaveUp) to give up")

        // Ctrl-C with no coordinator to confirm the cancel: out within about 2 s.
        let waiting = try OrthusProcess.start(
            ["submit", "--coordinator", cluster.clients, "--prompt", "hi", "--timeout", "60"],
            log: scratch.file("interrupted.log")
        )
        try await Task.sleep(for: .milliseconds(500))
        kill(waiting.processIdentifier, SIGINT)
        let interrupted = ContinuousClock.now
        while waiting.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(ContinuousClock.now - interrupted < .seconds(3))
        // With no coordinator to drain to, the workers would wait out their drain: they go at once.
        for name in cluster.processes.names { cluster.processes.kill(name) }
    }

    /// A coordinator that dies with a submit it had read (played by a socket on the client endpoint that takes the
    /// submit and closes): the client sends the submit again with the same submission id, the restarted coordinator
    /// accepts it, and the job runs once and finishes. Without the repeat the client would wait out its accept timeout.
    @Test func aSubmitLostWithItsCoordinatorIsSentAgainAndRunsOnce() async throws {
        let scratch = try ScratchFolder("resubmit")
        let journal = scratch.file("journal")
        let cluster = try LocalCluster(coordinatorArguments: ["--journal", journal])
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<4])
        cluster.processes.kill("coordinator")
        // A question about a picture: the copies carry the PNG as a tensor frame, framed anew for each.
        let job = ReferenceJob.all.first { $0.name == "image-to-text" }!
        let out = scratch.file("text")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let log = scratch.file("submit.log")
        var swallowed = 0
        let submit: Process
        do {
            let router = try ZMQSocket(try ZMQContext(), kind: .router)
            try router.bind(cluster.clients)
            submit = try OrthusProcess.start(
                ["submit", "--coordinator", cluster.clients, "--timeout", "60"] + job.arguments(out: out),
                log: log
            )
            let deadline = ContinuousClock.now + .seconds(20)
            while swallowed == 0, ContinuousClock.now < deadline {
                if try router.waitReadable(timeoutMilliseconds: 100), try router.receive() != nil { swallowed += 1 }
            }
        }  // the socket closes with its scope: the submit went down with this "coordinator"
        #expect(swallowed == 1)
        try cluster.restartCoordinator(["--journal", journal], name: "coordinator-2")
        let restarted = ContinuousClock.now
        while submit.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        let said = try String(contentsOfFile: log, encoding: .utf8)
        #expect(submit.terminationStatus == 0, "\(said)")
        #expect(ContinuousClock.now - restarted < .seconds(30), "the job took too long after the restart")
        let reference = try await job.generated(in: scratch.file("reference"))
        #expect(ReferenceJob.Outcome(job: job, folder: out, stdout: reference.stdout) == reference)
        // One job: the copy read by the dead one was lost with it, the repeats were taken as one.
        let report = try await cluster.status()
        #expect(report.completedJobs == 1 && report.jobs.isEmpty)
    }
}
