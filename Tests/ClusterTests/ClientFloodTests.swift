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
/// their undisturbed time, none stalled), no worker is declared down, the coordinator's peak memory stays under a
/// bound, and the flood is dropped and counted against the flooding client.
///
/// The undisturbed time is measured at the same moments on a twin cluster that is not flooded: each job runs on both
/// at once, so load from anything else on the machine (the other tests, in a full run) slows both alike.
@Suite struct ClientFloodTests {
    /// The coordinator's peak resident memory may grow by this much during the flood (its queues are bounded: 256
    /// messages of the flooder, libzmq's 1000-message pipes).
    static let memoryBound = 64 << 20
    static let flood = 400_000

    @Test func aFloodingClientDoesNotDelayAnother() async throws {
        let flooded = try LocalCluster()
        defer { flooded.stop() }
        let twin = try LocalCluster()
        defer { twin.stop() }
        try await flooded.startWorkers(stages: [0..<2, 2..<4])
        try await twin.startWorkers(stages: [0..<2, 2..<4])
        let client = try ClusterClient(endpoint: flooded.clients)
        let twinClient = try ClusterClient(endpoint: twin.clients)
        let spec = JobSpec(mode: .textToImage, prompt: "A red cube", maxTokens: 0, seed: 7, steps: 100)
        /// One job on each cluster at the same time: the flooded one's time over the twin's.
        func pair() async throws -> (ratio: Double, outcome: JobOutcome) {
            async let mine = Self.timedJob(client, spec)
            async let theirs = Self.timedJob(twinClient, spec)
            let (a, b) = try await (mine, theirs)
            return (a.time / b.time, a.outcome)
        }
        _ = try await pair()  // warm: every worker of both has run once
        // How the two compare undisturbed (they may differ a little however alike).
        var calm: [Double] = []
        for _ in 0..<3 { calm.append(try await pair().ratio) }
        let calmRatio = calm.sorted()[1]
        let reference = try await Self.timedJob(client, spec).outcome
        let coordinator = try #require(flooded.process("coordinator")?.processIdentifier)
        let peakBefore = try Self.peakMemory(coordinator)

        let flooder = Flooder(endpoint: flooded.clients, count: Self.flood)
        defer { flooder.stop() }
        // Once the flood is under way (the flooder waits on the coordinator), pairs of jobs run one after another and
        // status is asked every 100 ms until the coordinator has taken in the whole flood (each message refused as
        // unreadable, or dropped over the flooder's rate).
        while !flooder.backpressured { try await Task.sleep(for: .milliseconds(20)) }
        let jobsDone = Atomic<Bool>(false)
        let floodTakenIn = Atomic<Bool>(false)
        let jobs = Task {
            defer { jobsDone.store(true, ordering: .relaxed) }
            var pairs: [(ratio: Double, outcome: JobOutcome)] = []
            while pairs.count < 3 || !floodTakenIn.load(ordering: .relaxed) {
                pairs.append(try await pair())
                try await Task.sleep(for: .milliseconds(300))  // leaves the tests running beside this one some CPU
            }
            return pairs
        }
        var probe = StatusProbe(attacked: client, quiet: twinClient)
        var report = try await probe.probe()
        let deadline = ContinuousClock.now + .seconds(120)
        while report.droppedClientMessages + report.rejectedClientMessages < Self.flood
            || !jobsDone.load(ordering: .relaxed)
        {
            guard ContinuousClock.now < deadline else {
                Issue.record("the flood was not taken in within 120 s: \(report)")
                break
            }
            try await Task.sleep(for: .milliseconds(100))
            report = try await probe.probe()
            if report.droppedClientMessages + report.rejectedClientMessages >= Self.flood {
                floodTakenIn.store(true, ordering: .relaxed)
            }
        }
        let pairs = try await jobs.value
        let peakAfter = try Self.peakMemory(coordinator)

        #expect(probe.slowestExtra < .seconds(1), "the flood delayed status by \(probe.slowestExtra)")
        // Each job's slowdown: its time over the twin's, against the same ratio undisturbed.
        let slowdowns = pairs.map { $0.ratio / calmRatio }.sorted()
        let median = slowdowns[slowdowns.count / 2]
        #expect(median < 1.5, "during the flood the jobs took \(median)x their undisturbed time: \(slowdowns)")
        #expect(slowdowns.last! < 3, "a job stalled: \(slowdowns.last!)x its undisturbed time")
        for pair in pairs { #expect(pair.outcome.images == reference.images) }
        #expect(report.members.count == 4 && report.members.allSatisfy { $0.state == "alive" }, "\(report.members)")
        #expect(report.droppedClientMessages > Self.flood / 2, "\(report.droppedClientMessages) dropped")
        let flooderRow = try #require(report.floodingClients.first)
        #expect(flooderRow.peer.hasPrefix("connection") && flooderRow.dropped > Self.flood / 2)
        #expect(peakAfter - peakBefore < Self.memoryBound, "peak RSS grew by \((peakAfter - peakBefore) >> 20) MiB")
        print(
            "client flood: status slowest \(probe.slowest) (at most \(probe.slowestExtra) more than the twin's); \(pairs.count) jobs, median \(median)x and slowest "
                + "\(slowdowns.last!)x their undisturbed time; dropped \(report.droppedClientMessages); "
                + "coordinator peak RSS +\((peakAfter - peakBefore) >> 10) KiB"
        )
    }

    static func timedJob(_ client: ClusterClient, _ spec: JobSpec) async throws -> (time: Double, outcome: JobOutcome) {
        let start = ContinuousClock.now
        let outcome = try await client.submit(spec, acceptTimeout: .seconds(10)).collect()
        let elapsed = (ContinuousClock.now - start).components
        return (Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18, outcome)
    }

    /// VmHWM of a process, in bytes.
    static func peakMemory(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) << 10
    }
}

/// A client that sends `count` garbage messages as fast as the coordinator's socket takes them and never reads: a
/// plain socket on its own thread, at the lowest priority with the libzmq threads it starts (they inherit it), so it
/// takes only CPU the clusters leave, as a flooder on another host would take none of this machine's.
final class Flooder: Sendable {
    private final class Flags: Sendable {
        let blocked = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
    }
    private let flags = Flags()

    /// Whether the flooder has filled every buffer on the way and now waits on the coordinator.
    var backpressured: Bool { flags.blocked.load(ordering: .relaxed) }

    init(endpoint: String, count: Int) {
        let flags = self.flags
        let thread = Thread {
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // 0: on Linux, the calling thread alone
            do {
                let socket = try ZMQSocket(try ZMQContext(), kind: .dealer)
                try socket.connect(endpoint)
                var index = 0
                while index < count {
                    let message = [try ZMQMessage(bytes: [UInt8(truncatingIfNeeded: index), 0xFF, 0x01])]
                    do {
                        try socket.send(message)
                        index += 1
                    } catch let error as ZMQError where error.wouldBlock {
                        flags.blocked.store(true, ordering: .relaxed)
                        usleep(100)
                    }
                }
                // The socket stays open until the test ends: closing it would drop what libzmq has not sent yet.
                while !flags.finished.load(ordering: .relaxed) { usleep(10_000) }
            } catch {
                Issue.record("the flooder stopped: \(error)")
            }
        }
        thread.start()
    }

    func stop() { flags.finished.store(true, ordering: .relaxed) }
}
