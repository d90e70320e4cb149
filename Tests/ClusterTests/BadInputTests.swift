import ClusterProtocol
import Foundation
import TestSupport
import Testing
import Transport
import Wire

/// A coordinator process fed bad input on both of its sockets answers each message with a reason (or, for an
/// oversized one, libzmq drops it), counts it, and keeps serving: a real job afterwards still gives generate's output.
@Suite struct BadInputTests {
    /// A raw DEALER to one of the coordinator's endpoints, and the replies it gets.
    struct Peer {
        let pump: SocketPump
        var replies: AsyncStream<[ZMQMessage]>.Iterator

        init(_ context: ZMQContext, _ endpoint: String) throws {
            pump = try SocketPump(context: context, name: "peer", kind: .dealer, connect: endpoint)
            replies = pump.inbound.makeAsyncIterator()
        }

        /// Sends raw frames and returns the failure reason the coordinator answers with.
        mutating func failure(_ frames: [ZMQMessage]) async throws -> String {
            pump.send(frames)
            let reply = try WireMessage.parse(try #require(await replies.next()))
            #expect(reply.envelope.kind == Envelope.failureKind)
            return reply.envelope.error
        }

        mutating func failure(_ envelope: Envelope, tensors: [ZMQMessage] = []) async throws -> String {
            try await failure([try ZMQMessage(bytes: EnvelopeCodec.encode(envelope))] + tensors)
        }
    }

    @Test func everyBadMessageGetsAReasonOrACountedDropAndTheCoordinatorCarriesOn() async throws {
        let cluster = try LocalCluster(coordinatorArguments: ["--max-message-mb", "1", "--max-client-message-mb", "1"])
        defer { cluster.stop() }
        let context = try ZMQContext()
        var client = try Peer(context, cluster.clients)
        let job = JobSpec(mode: .text, prompt: "hi", maxTokens: 4)

        // Client socket.
        #expect(try await client.failure([try ZMQMessage(bytes: [0xFF, 0x01, 0x02])]).contains("not a valid"))
        #expect(
            try await client.failure(Envelope(kind: MessageKind.submit.rawValue, job: job, version: 1))
                .contains("version 1")
        )
        let short = Envelope(
            kind: MessageKind.submit.rawValue,
            tensors: [TensorDescriptor(name: "image", dtype: .uint8, shape: [100])],
            job: JobSpec(mode: .imageToText, prompt: "what?", maxTokens: 4)
        )
        #expect(
            try await client.failure(short, tensors: [try ZMQMessage(bytes: [UInt8](repeating: 0, count: 10))])
                .contains("'image' frame has 10 bytes")
        )
        let noImage = Envelope(
            kind: MessageKind.submit.rawValue,
            job: JobSpec(mode: .imageToText, prompt: "?", maxTokens: 4)
        )
        #expect(try await client.failure(noImage).contains("named 'image'"))
        #expect(try await client.failure(Envelope(kind: MessageKind.submit.rawValue)).contains("carries no job"))
        #expect(
            try await client.failure(Envelope(kind: MessageKind.cancel.rawValue, jobID: 999)).contains("no job 999")
        )
        #expect(try await client.failure(Envelope(kind: 77)).contains("kind 77"))
        var bad = job
        bad.topP = 0
        #expect(try await client.failure(Envelope(kind: MessageKind.submit.rawValue, job: bad)).contains("top_p"))

        // Worker socket.
        var worker = try Peer(context, cluster.workers)
        #expect(try await worker.failure([try ZMQMessage(bytes: [0x00, 0xFF])]).contains("not a valid"))
        #expect(
            try await worker.failure(Envelope(kind: 21, requestID: 5)).contains("has not said hello")
        )
        #expect(try await worker.failure(Envelope(kind: 46, workerID: 12345)).contains("unknown worker w12345"))
        let refused = Envelope(
            kind: 40,
            registration: Registration(key: "bad-stage", incarnation: 1, role: .stage, layers: 0..<0)
        )
        var link = try Peer(context, cluster.workers)
        link.pump.send(try WireMessage(envelope: refused).frames())
        let answer = try WireMessage.parse(try #require(await link.replies.next()))
        #expect(answer.envelope.kind == 45 && answer.envelope.error.contains("non-empty layer range"))

        // Oversized (over --max-client-message-mb): libzmq drops it and disconnects that peer before it reaches the loop.
        let big = try Peer(context, cluster.clients)
        big.pump.send(
            [
                try ZMQMessage(bytes: EnvelopeCodec.encode(Envelope(kind: MessageKind.status.rawValue))),
                try ZMQMessage(bytes: [UInt8](repeating: 0, count: 2 << 20)),
            ]
        )

        // Give libzmq time to refuse it; the exact counters below show it never reached the coordinator's loop.
        try await Task.sleep(for: .milliseconds(300))
        let report = try await cluster.status()
        #expect(report.rejectedClientMessages == 8 && report.rejectedWorkerMessages == 3)
        #expect(report.members.isEmpty && report.jobs.isEmpty)

        // Still serving: a real cluster runs a job to generate's output.
        try await cluster.startWorkers(stages: [0..<4])
        let text = ReferenceJob.all[0]
        let result = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(result.status == 0 && result.stdout == ReferenceJob.expected[text.name]?.stdout)
        for peer in [client, worker, link, big] { peer.pump.stop() }
    }

    @Test func aJobRefusedByTheClusterExitsNonZeroWithTheReason() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<4])
        // The fixture's context is shorter than this prompt.
        let long = String(repeating: "word ", count: 3000)
        let result = try await cluster.submit(["--prompt", long, "--max-tokens", "4"])
        #expect(result.status != 0 && result.stderr.contains("error: job") && result.stderr.contains("context"))
        // A PNG bomb (20000 x 20000 claimed in 57 bytes) is refused by the diffusion worker from its header, naming
        // the limit; the job fails with that reason.
        let bomb = cluster.folder + "/bomb.png"
        try PNGBomb.bytes(width: 20000, height: 20000).write(to: URL(fileURLWithPath: bomb))
        let bombed = try await cluster.submit(["--prompt", "what is this?", "--image", bomb, "--max-tokens", "2"])
        #expect(bombed.status != 0 && bombed.stderr.contains("the limit is 16777216 pixels"), "\(bombed.stderr)")
        // Ctrl-C on a running submit cancels its job on the cluster.
        let log = cluster.folder + "/cancelled.log"
        let running = try OrthusProcess.start(
            [
                "submit", "--coordinator", cluster.clients, "--prompt", "a long image", "--image-out",
                cluster.folder + "/never.png", "--steps", "1000",
            ],
            log: log
        )
        _ = try await cluster.waitFor("the job under way") { report in report.jobs.contains { $0.patches > 0 } }
        kill(running.processIdentifier, SIGINT)
        while running.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        let said = try String(contentsOfFile: log, encoding: .utf8)
        #expect(running.terminationStatus != 0 && said.contains("cancelled by its client"))
        let after = try await cluster.waitFor("the job to be gone") { $0.jobs.isEmpty }
        // Two failed (the long prompt, the bomb); the cancelled one is counted apart.
        #expect(after.failedJobs == 2 && after.cancelledJobs == 1)
        #expect(!FileManager.default.fileExists(atPath: cluster.folder + "/never.png"))

        let unreachable = try await OrthusProcess.output(
            ["submit", "--coordinator", "tcp://127.0.0.1:1", "--prompt", "hi", "--timeout", "0.5"]
        )
        #expect(unreachable.status != 0 && unreachable.stderr.contains("no answer from the coordinator"))
    }
}
