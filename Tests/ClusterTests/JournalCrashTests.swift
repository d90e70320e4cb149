import ClusterClient
import ClusterProtocol
import Coordinator
import Foundation
import TestSupport
import Testing
import Wire

/// The journal under crashes: the coordinator is killed with SIGKILL at random points while clients submit jobs and
/// jobs finish, again and again. Every job a client saw accepted is still in the journal, no journal file is ever
/// unreadable, and in the end every accepted job's answer is the one generate gives.
///
/// CI crashes it 10 times; `ORTHUS_JOURNAL_CRASHES=50 swift test --filter JournalCrashTests` runs it longer.
@Suite struct JournalCrashTests {
    static let crashes = ProcessInfo.processInfo.environment["ORTHUS_JOURNAL_CRASHES"].flatMap(Int.init) ?? 10

    @Test func noAcceptedJobIsLostOrCorruptAcrossManyCrashes() async throws {
        let scratch = try ScratchFolder("journal-crash")
        let journal = scratch.file("journal")
        let cluster = try LocalCluster(coordinatorArguments: ["--journal", journal])
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<4])
        let text = ReferenceJob.all[0]
        let expected = try #require(ReferenceJob.expected[text.name]?.stdout)
        let spec = JobSpec(mode: .text, prompt: "Hello there", maxTokens: 20, temperature: 0.8, topK: 40, seed: 3)
        var accepted: Set<UInt64> = []
        var generator = SystemRandomNumberGenerator()
        for crash in 0..<Self.crashes {
            // The workers are back with the new coordinator (or the first one), so jobs also finish between crashes,
            // and the restarted jobs do not pile up to the coordinator's limit of 64.
            _ = try await cluster.waitFor("the workers and a short queue", seconds: 60) {
                $0.ready && $0.jobs.count < 16
            }
            // A few submissions; each counts once the coordinator has said it accepted the job.
            let client = try ClusterClient(endpoint: cluster.clients)
            try await withThrowingTaskGroup(of: UInt64?.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        let stream = try client.submit(spec, acceptTimeout: .seconds(5))
                        defer { stream.close() }
                        for try await message in stream {
                            if case .accepted(let job, _, _) = message { return job }
                        }
                        return nil
                    }
                }
                for try await job in group { if let job { accepted.insert(job) } }
            }
            // Some jobs run on; the coordinator dies at a random point of them.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0..<600, using: &generator)))
            try cluster.restartCoordinator(["--journal", journal], name: "coordinator-\(crash + 1)")
            let read = try JournalReader.read(folder: journal)
            #expect(read.unreadable.isEmpty, "after crash \(crash): \(read.unreadable)")
            #expect(
                read.jobs >= accepted.count,
                "after crash \(crash): \(read.jobs) jobs journaled, \(accepted.count) accepted"
            )
        }
        // The last coordinator runs what was unfinished; then every accepted job's answer is generate's.
        _ = try await cluster.waitFor("the workers to return", seconds: 60) { $0.ready }
        _ = try await cluster.waitFor("every job to end", seconds: 120) { $0.jobs.isEmpty }
        let client = try ClusterClient(endpoint: cluster.clients)
        for job in accepted.sorted() {
            let outcome = try await client.fetch(job: job, timeout: .seconds(10)).collect()
            #expect(outcome.text + "\n" == expected, "job \(job) answered \(outcome.text)")
        }
        #expect(accepted.count == 3 * Self.crashes)
    }
}
