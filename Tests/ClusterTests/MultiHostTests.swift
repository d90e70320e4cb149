import ClusterLauncher
import ClusterProtocol
import Foundation
import TestSupport
import Testing

/// A keyed cluster across six hosts in network namespaces (coordinator; stage 0; stage 1; the LM-head worker and a
/// diffusion worker; a second diffusion worker; the client), each role on its own namespace address: every mode gives
/// generate's bytes, across a cut of a stage's cable shorter than the suspect time, over a stage link slowed by a
/// token bucket, across a killed stage whose replacement's cable is cut while the jobs are replayed onto it, and
/// across a cut of the head workers' host longer than the down time (they are declared down, come
/// back, register again and finish the work).
@Suite struct MultiHostTests {
    static let hosts = ["coord", "stage0", "stage1", "heads", "diffusion", "client"]

    /// Making network namespaces needs root (CI runs as root).
    @Test(.enabled(if: getuid() == 0, "network namespaces need root"))
    func everyModeAcrossHostsAndCutLinks() async throws {
        let bed = try NetworkBed(hosts: Self.hosts)
        let scratch = try ScratchFolder("multi-host")
        let keys = scratch.file("keys")
        _ = try await OrthusProcess.output(["keys", keys])
        let secure = ["--curve-dir", keys]
        let model = Fixtures.tinyOrthus
        let processes = try ClusterProcesses(executable: OrthusProcess.executable, logs: scratch.file("logs"))
        defer { processes.stop() }
        let coordinator = try bed.address("coord")
        try processes.startCoordinator(
            model: model,
            listen: "tcp://\(coordinator):5555",
            workers: "tcp://\(coordinator):5556",
            arguments: secure,
            under: bed.on("coord")
        )
        let join = ["--coordinator", processes.workers, "--model", model] + secure
        for (index, layers) in ["0..<2", "2..<4"].enumerated() {
            let host = "stage\(index)"
            let listen = "tcp://\(try bed.address(host)):5601"
            try processes.start(host, ["stage"] + join + ["--layers", layers, "--listen", listen], under: bed.on(host))
        }
        try processes.start("lm", ["lm-head"] + join, under: bed.on("heads"))
        try processes.start("diffusion-a", ["diffusion-head"] + join, under: bed.on("heads"))
        try processes.start("diffusion-b", ["diffusion-head"] + join, under: bed.on("diffusion"))
        let client = ["--coordinator", processes.clients] + secure
        func orthus(_ arguments: [String]) async throws -> OrthusProcess.Output {
            try await OrthusProcess.output(arguments, under: bed.on("client"))
        }
        let ready = try await orthus(["status"] + client + ["--wait", "60", "--json"])
        #expect(ready.status == 0, "the cluster did not become ready: \(ready.stderr)")
        let report = try JSONDecoder().decode(StatusReport.self, from: Data(ready.stdout.utf8))
        #expect(report.members.compactMap(\.endpoint).allSatisfy { $0.hasPrefix("tcp://10.77.0.") })

        /// Runs jobs together from the client host and checks each against generate's outputs.
        func runAndCompare(_ jobs: [ReferenceJob], _ label: String) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for job in jobs {
                    let out = scratch.file(label + "-" + job.name)
                    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                    group.addTask {
                        let result = try await orthus(["submit"] + client + job.arguments(out: out))
                        #expect(result.status == 0, "\(job.name) \(label): \(result.stderr)")
                        let outcome = ReferenceJob.Outcome(job: job, folder: out, stdout: result.stdout)
                        #expect(
                            outcome == ReferenceJob.expected[job.name],
                            "\(job.name) \(label) differs from generate"
                        )
                    }
                }
                try await group.waitForAll()
            }
        }

        // Every mode while stage 1's cable is out for 1 s (less than the 3 s suspect time): TCP carries the
        // micro-batches over once it is back; nothing is suspected or replayed.
        try bed.cut("stage1")
        let mend = Task {
            try await Task.sleep(for: .seconds(1))
            try bed.mend("stage1")
        }
        try await runAndCompare(ReferenceJob.all, "short-cut")
        try await mend.value

        // Stage 1's link slowed to 1 Mbit/s by a token bucket: slower, the same bytes.
        try bed.slow("stage1", to: "1mbit")
        try await runAndCompare(ReferenceJob.all.filter { $0.name == "text" || $0.name == "image-to-text" }, "slow")
        try bed.slow("stage1", to: nil)

        // Stage 0 killed while jobs run, and started again on its host. The killed one is silent, so once the
        // micro-batch it held is past its deadline and it is suspect, the pipeline is formed on the replacement and
        // the jobs are replayed onto it; its cable is cut for 1.5 s as soon as the coordinator starts the replay.
        let coordinatorLog = processes.logPath("coordinator")
        // A long image job (1,000 steps a patch) is sure to be under way when the stage dies, however loaded the
        // machine; an interleaved answer beside it.
        let long = StageLossTests.image
        let longOut = scratch.file("replay-cut-long")
        try FileManager.default.createDirectory(atPath: longOut, withIntermediateDirectories: true)
        let disturbed = Task {
            async let beside: Void = runAndCompare(ReferenceJob.all.filter { $0.name == "interleaved" }, "replay-cut")
            let result = try await orthus(["submit"] + client + long.arguments(out: longOut))
            try await beside
            return result
        }
        let runningDeadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < runningDeadline {
            let status = try await orthus(["status"] + client + ["--json"])
            let report = try JSONDecoder().decode(StatusReport.self, from: Data(status.stdout.utf8))
            if report.jobs.contains(where: { $0.phase == "running" && $0.patches > 0 }) { break }
        }
        let replaysBefore = try Self.replays(in: coordinatorLog).count
        processes.kill("stage0")
        let stageListen = "tcp://\(try bed.address("stage0")):5601"
        try processes.start(
            "stage0",
            ["stage"] + join + ["--layers", "0..<2", "--listen", stageListen],
            log: "stage0-replacement",
            under: bed.on("stage0")
        )
        let replayDeadline = ContinuousClock.now + .seconds(60)
        while try Self.replays(in: coordinatorLog).count == replaysBefore, ContinuousClock.now < replayDeadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        try bed.cut("stage0")
        try await Task.sleep(for: .milliseconds(1500))
        try bed.mend("stage0")
        let longResult = try await disturbed.value
        #expect(longResult.status == 0, "the long job: \(longResult.stderr)")
        let longReference = try await long.generated(in: scratch.file("replay-cut-reference"))
        #expect(ReferenceJob.Outcome(job: long, folder: longOut, stdout: longResult.stdout) == longReference)
        let replays = try Self.replays(in: coordinatorLog).dropFirst(replaysBefore)
        let logged = try String(contentsOfFile: coordinatorLog, encoding: .utf8)
        #expect(replays.contains { $0 > 0 }, "no job was replayed: \(logged.suffix(3000))")

        // The head workers' host out for 11 s, longer than the 10 s down time: the LM-head worker and one diffusion
        // worker are declared down; back, they register again and the jobs finish as generate's.
        let downBefore = try Self.lmHeadsDeclaredDown(in: coordinatorLog)
        try bed.cut("heads")
        let longMend = Task {
            try await Task.sleep(for: .seconds(11))
            try bed.mend("heads")
        }
        try await runAndCompare(ReferenceJob.all.filter { $0.name == "text" || $0.name == "text-to-image" }, "long-cut")
        try await longMend.value
        let after = try await orthus(["status"] + client + ["--json"])
        let final = try JSONDecoder().decode(StatusReport.self, from: Data(after.stdout.utf8))
        // The status lists a down member for a minute only (then the coordinator forgets it), and the jobs can take
        // longer than that on a slow host, so the coordinator's log is the record that the LM head was declared down.
        let lmHeads = final.members.filter { $0.role == "lm-head" }
        #expect(try Self.lmHeadsDeclaredDown(in: coordinatorLog) > downBefore, "the LM-head worker was never down")
        #expect(lmHeads.contains { $0.state == "alive" }, "\(lmHeads)")
        #expect(final.failedJobs == 0 && final.jobs.isEmpty)
    }

    /// How many times a coordinator's log says an LM-head worker is down.
    static func lmHeadsDeclaredDown(in log: String) throws -> Int {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").count {
            $0.contains("LM-head worker") && $0.contains(") is down")
        }
    }

    /// The jobs each replay in a coordinator's log was of ("replaying N job(s) onto the new pipeline").
    static func replays(in log: String) throws -> [Int] {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "replaying ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
    }
}
