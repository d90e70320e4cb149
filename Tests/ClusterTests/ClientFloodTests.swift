import ClusterClient
import ClusterProtocol
import Foundation
import Synchronization
import TestSupport
import Testing
import Transport
import Wire

/// One client floods the client socket with 400,000 small garbage messages and never reads a reply, while another
/// client runs jobs and asks for status: the other client is served as if alone (status within 1 s, jobs within 1.5x
/// their undisturbed time), no worker is declared down, the coordinator's peak memory stays under a bound, and the
/// flood is dropped and counted against the flooding client.
@Suite struct ClientFloodTests {
    /// The coordinator's peak resident memory may grow by this much during the flood (its queues are bounded: 256
    /// messages of the flooder, libzmq's 1000-message pipes).
    static let memoryBound = 64 << 20

    @Test func aFloodingClientDoesNotDelayAnother() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<2, 2..<4])
        let client = try ClusterClient(endpoint: cluster.clients)
        let spec = JobSpec(mode: .textToImage, prompt: "A red cube", maxTokens: 0, seed: 7, steps: 100)
        func runJob() async throws -> (Duration, JobOutcome) {
            let start = ContinuousClock.now
            let outcome = try await client.submit(spec, acceptTimeout: .seconds(10)).collect()
            return (ContinuousClock.now - start, outcome)
        }
        _ = try await runJob()  // warm: every worker has run once
        // Undisturbed: the median of three runs, before the flood and again after it; the larger of the two is the
        // reference, since the other tests running beside this one load the machine unevenly.
        func undisturbed() async throws -> (Duration, JobOutcome) {
            var runs: [(Duration, JobOutcome)] = []
            for _ in 0..<3 { runs.append(try await runJob()) }
            return runs.sorted { $0.0 < $1.0 }[1]
        }
        let (before, reference) = try await undisturbed()
        let coordinator = try #require(cluster.process("coordinator")?.processIdentifier)
        let peakBefore = try Self.peakMemory(coordinator)

        let flood = 400_000
        let sent = Atomic<Int>(0)
        let finished = Atomic<Bool>(false)
        let backpressured = Atomic<Bool>(false)
        // The flooder is a plain socket on its own thread, sending as fast as the coordinator's socket takes them.
        let endpoint = cluster.clients
        let flooder = Thread {
            // At the lowest priority, with the libzmq threads its context starts (they inherit it): the flooder takes
            // only CPU the cluster leaves, as a flooder on another host would take none of this machine's.
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // 0: on Linux, the calling thread alone
            do {
                let socket = try ZMQSocket(try ZMQContext(), kind: .dealer)
                try socket.connect(endpoint)
                var index = 0
                while index < flood {
                    let message = [try ZMQMessage(bytes: [UInt8(truncatingIfNeeded: index), 0xFF, 0x01])]
                    do {
                        try socket.send(message)
                        index += 1
                        if index % 1000 == 0 { sent.store(index, ordering: .relaxed) }
                    } catch let error as ZMQError where error.wouldBlock {
                        backpressured.store(true, ordering: .relaxed)
                        usleep(100)
                    }
                }
                sent.store(flood, ordering: .relaxed)
                // The socket stays open until the test ends: closing it would drop what libzmq has not sent yet.
                while !finished.load(ordering: .relaxed) { usleep(10_000) }
            } catch {
                Issue.record("the flooder stopped: \(error)")
            }
        }
        flooder.start()
        defer { finished.store(true, ordering: .relaxed) }
        // Once the flood is under way (the flooder waits on the coordinator), jobs run one after another and status is
        // asked every 100 ms until the coordinator has taken in the whole flood (each message refused as unreadable,
        // or dropped over the flooder's rate).
        while !backpressured.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(20)) }
        let jobsDone = Atomic<Bool>(false)
        let floodTakenIn = Atomic<Bool>(false)
        let jobs = Task {
            defer { jobsDone.store(true, ordering: .relaxed) }
            var timed: [(Duration, JobOutcome)] = []
            while timed.count < 3 || !floodTakenIn.load(ordering: .relaxed) { timed.append(try await runJob()) }
            return timed
        }
        var slowest: Duration = .zero
        var report = try await client.status(timeout: .seconds(10))
        let deadline = ContinuousClock.now + .seconds(120)
        while report.droppedClientMessages + report.rejectedClientMessages < flood || !jobsDone.load(ordering: .relaxed)
        {
            guard ContinuousClock.now < deadline else {
                Issue.record("the flood was not taken in within 120 s: \(report)")
                break
            }
            try await Task.sleep(for: .milliseconds(100))
            let start = ContinuousClock.now
            report = try await client.status(timeout: .seconds(10))
            slowest = max(slowest, ContinuousClock.now - start)
            if report.droppedClientMessages + report.rejectedClientMessages >= flood {
                floodTakenIn.store(true, ordering: .relaxed)
            }
        }
        let timed = try await jobs.value
        let peakAfter = try Self.peakMemory(coordinator)
        let alone = max(before, try await undisturbed().0)

        #expect(slowest < .seconds(1), "status took \(slowest) during the flood")
        for (time, outcome) in timed {
            #expect(outcome.images == reference.images)
            #expect(time < alone * 1.5, "a job took \(time) during the flood, \(alone) alone")
        }
        #expect(report.members.count == 4 && report.members.allSatisfy { $0.state == "alive" }, "\(report.members)")
        #expect(report.droppedClientMessages > flood / 2, "\(report.droppedClientMessages) dropped")
        let flooderRow = try #require(report.floodingClients.first)
        #expect(flooderRow.peer.hasPrefix("connection") && flooderRow.dropped > flood / 2)
        #expect(peakAfter - peakBefore < Self.memoryBound, "peak RSS grew by \((peakAfter - peakBefore) >> 20) MiB")
        let worst = timed.map { $0.0 / alone }.max() ?? 0
        print(
            "client flood: status slowest \(slowest); \(timed.count) jobs, the slowest \(worst)x their median alone "
                + "(\(alone)); dropped \(report.droppedClientMessages); coordinator peak RSS +\((peakAfter - peakBefore) >> 10) KiB"
        )
    }

    /// VmHWM of a process, in bytes.
    static func peakMemory(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) << 10
    }
}
