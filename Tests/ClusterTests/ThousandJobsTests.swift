import ClusterClient
import ClusterProtocol
import Foundation
import Testing
import Wire

/// A thousand jobs (every fourth an image) against a cluster of real processes whose stage has room for only a few at
/// once: jobs wait for KV room, the coordinator refuses what is beyond its queue ("full", and the client retries, as users do), every
/// accepted job finishes, and the coordinator's memory stays under its bound all along.
@Suite(.serialized) struct ThousandJobsTests {
    /// What the coordinator may use at its peak over the run. What it holds is bounded by `--max-jobs` jobs and
    /// `--max-held-input-mb` of their pictures and noise, not by how many are submitted; these jobs bring neither, so
    /// its tokenizer, sockets and 32 small jobs are all there is (about 40 MiB measured).
    static let peakBound = 96 << 20

    @Test func aThousandJobsFinishAndTheCoordinatorStaysUnderItsMemoryBound() async throws {
        // A queue of 32 jobs for 40 submitters: some are refused as full and submitted again.
        let cluster = try LocalCluster(coordinatorArguments: ["--max-jobs", "32"])
        defer { cluster.stop() }
        // 1 MiB of KV on the only stage: room for a few jobs at a time.
        try cluster.stage("stage", layers: 0..<4, extra: ["--kv-memory", "1"])
        try cluster.lmHead("lm")
        try cluster.diffusionHead("diffusion")
        _ = try await cluster.waitFor("the cluster") { $0.ready }
        let pid = try #require(cluster.processes.process("coordinator")?.processIdentifier)
        let settled = try Self.memory(of: pid)

        let client = try ClusterClient(endpoint: cluster.clients)
        // Meanwhile, status: jobs wait for KV room (queued while others run), and what is reserved stays in budget.
        let watch = Task {
            var (queued, reserved, budget) = (0, 0, 0)
            while !Task.isCancelled {
                if let report = try? await client.status(timeout: .seconds(2)) {  // a missed poll only skips a sample
                    queued = max(queued, report.jobs.filter { $0.phase == "queued" }.count)
                    reserved = max(reserved, report.kvReserved)
                    budget = Int(report.members.first { $0.role == "stage" }?.kvBudget ?? 0)
                }
                try? await Task.sleep(for: .milliseconds(50))  // cancelled: the loop ends
            }
            return (queued: queued, reserved: reserved, budget: budget)
        }
        let submitters = 40
        let perSubmitter = 25
        let tally = try await withThrowingTaskGroup(of: (finished: Int, fullRefusals: Int).self) { group in
            for lane in 0..<submitters {
                group.addTask {
                    var tally = (finished: 0, fullRefusals: 0)
                    for index in 0..<perSubmitter {
                        let number = lane * perSubmitter + index
                        let spec =
                            number % 4 == 0
                            ? JobSpec(mode: .textToImage, prompt: "a red square", maxTokens: 0, seed: 7, steps: 2)
                            : JobSpec(mode: .text, prompt: "count \(number)", maxTokens: 4)
                        while true {
                            do {
                                let outcome = try await client.submit(spec, acceptTimeout: .seconds(30)).collect()
                                // A text answer may be empty (the model can end at once); an image job has its image.
                                #expect(outcome.job > 0 && (spec.mode == .text || outcome.images.count == 1))
                                tally.finished += 1
                                break
                            } catch ClientError.refused(let reason) where reason.contains("the cluster is full") {
                                tally.fullRefusals += 1
                                try await Task.sleep(for: .milliseconds(100))
                            }
                        }
                    }
                    return tally
                }
            }
            var total = (finished: 0, fullRefusals: 0)
            for try await lane in group {
                total = (total.finished + lane.finished, total.fullRefusals + lane.fullRefusals)
            }
            return total
        }
        let after = try Self.memory(of: pid)
        watch.cancel()
        let seen = await watch.value
        let report = try await cluster.status()
        print(
            "1,000 jobs: \(tally.finished) finished, \(tally.fullRefusals) refused as full and retried; coordinator "
                + "resident \(settled.resident >> 20) MiB when ready, \(after.resident >> 20) MiB after, "
                + "peak \(after.peak >> 20) MiB; at most \(seen.queued) queued, \(seen.reserved) of \(seen.budget) KV "
                + "positions reserved"
        )
        #expect(seen.queued > 0 && seen.reserved > 0 && seen.reserved <= seen.budget)
        #expect(tally.finished == submitters * perSubmitter && tally.fullRefusals > 0)
        #expect(report.completedJobs == submitters * perSubmitter && report.failedJobs == 0 && report.jobs.isEmpty)
        #expect(report.kvReserved == 0)
        #expect(after.peak < Self.peakBound, "the coordinator peaked at \(after.peak >> 20) MiB")
    }

    /// A process's resident and peak resident memory, from /proc.
    static func memory(of pid: Int32) throws -> (resident: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func kib(_ field: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) << 10
        }
        return (kib("VmRSS"), kib("VmHWM"))
    }
}
