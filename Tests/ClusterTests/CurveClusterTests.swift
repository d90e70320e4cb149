import ClusterProtocol
import Foundation
import Generation
import TestSupport
import Testing
import Transport
import Wire

/// A cluster started with CurveZMQ keys, attacked from outside: every link is authenticated and encrypted, and each
/// key is confined to its role. An admitted client runs a job to generate's output; no keys or a stranger's key get
/// no answer; a client key cannot join as a worker nor reach a stage; an unkeyed worker cannot join; a worker key
/// that is not a stage's upstream is refused and counted by the stage; a client cannot fetch another's job.
@Suite struct CurveClusterTests {
    @Test func eachKeyIsConfinedToItsRole() async throws {
        let scratch = try ScratchFolder("keys")
        let keys = scratch.file("cluster")
        let strangers = scratch.file("strangers")
        let made = try await OrthusProcess.output(["keys", keys, "--client", "alice", "--client", "bob"])
        #expect(made.status == 0, "\(made.stderr)")
        _ = try await OrthusProcess.output(["keys", strangers, "--client", "mallory"])
        // Mallory knows the cluster's public key but holds a key the cluster never admitted.
        try FileManager.default.removeItem(atPath: strangers + "/cluster.pub")
        try FileManager.default.copyItem(atPath: keys + "/cluster.pub", toPath: strangers + "/cluster.pub")

        let secure = ["--curve-dir", keys]
        let cluster = try LocalCluster(
            coordinatorArguments: secure + ["--journal", scratch.file("journal")],
            workerArguments: secure,
            clientArguments: secure + ["--key-name", "alice"]
        )
        defer { cluster.stop() }
        let ready = try await cluster.startWorkers(stages: [0..<2, 2..<4])
        let text = ReferenceJob.all[0]
        let result = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(result.status == 0 && result.stdout == ReferenceJob.expected[text.name]?.stdout)
        let job = try #require(result.stderr.firstMatch(of: /job (\d+) accepted/).flatMap { UInt64($0.1) })

        for arguments in [[], ["--curve-dir", strangers, "--key-name", "mallory"]] {
            let refused = try await OrthusProcess.output(
                ["status", "--coordinator", cluster.clients, "--timeout", "1"] + arguments
            )
            #expect(refused.status != 0 && refused.stderr.contains("no answer from the coordinator"))
        }

        // Bob's key is admitted, but Alice's job is not his: unknown to him, fetchable by her and by the admin.
        func fetch(_ name: String) async throws -> OrthusProcess.Output {
            try await OrthusProcess.output(
                ["fetch", "--coordinator", cluster.clients, "--job", "\(job)"] + secure + ["--key-name", name]
            )
        }
        let bobs = try await fetch("bob")
        #expect(bobs.status != 0 && bobs.stderr.contains("no job \(job)"), "\(bobs.stderr)")
        for owner in ["alice", "admin"] {
            let fetched = try await fetch(owner)
            #expect(fetched.status == 0 && fetched.stdout == result.stdout, "\(owner): \(fetched.stderr)")
        }

        // A client key posing as a worker, and a worker without keys, never join.
        let rogue = scratch.file("rogue")
        try FileManager.default.createDirectory(atPath: rogue + "/workers", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: keys + "/cluster.pub", toPath: rogue + "/cluster.pub")
        try FileManager.default.copyItem(atPath: keys + "/clients/alice.key", toPath: rogue + "/workers/worker.key")
        for arguments in [["--curve-dir", rogue], []] {
            let joined = try await OrthusProcess.output(
                ["lm-head", "--coordinator", cluster.workers, "--model", cluster.model, "--join-timeout", "2"]
                    + arguments
            )
            #expect(joined.status != 0 && joined.stderr.contains("no answer from the coordinator"), "\(joined.stderr)")
        }

        // Into the first stage: Alice's client key is refused by the handshake (nothing arrives); the worker key is
        // admitted but carries no route token, so the stage drops its micro-batches unread and counts them.
        let stage = try #require(ready.members.first { $0.layers == "0..<2" }?.endpoint)
        let context = try ZMQContext()
        let forged = StageBatch(
            microBatch: 1,
            slices: [SequenceSlice(sequenceID: 99, start: 0, count: 255)],
            input: .inputs(Array(repeating: .token(1), count: 255)),
            routeToken: 12345
        )
        for (name, role) in [("alice", PeerIdentity.Role.client), ("worker", .worker)] {
            let own = try ClusterKeys.readPair(
                keys + (role == .client ? "/clients/" : "/workers/") + name + ".key"
            )
            var options = ZMQSocket.Options()
            options.curve = .client(
                publicKey: own.publicKey,
                secretKey: own.secretKey,
                serverKey: try ClusterKeys.readKey(keys + "/cluster.pub")
            )
            let push = try SocketPump(context: context, name: "intruder", kind: .push, options: options, connect: stage)
            for _ in 0..<40 { push.send(try forged.message().frames()) }
            _ = await push.flush(timeout: .seconds(2))
            try await Task.sleep(for: .milliseconds(300))
            push.stop()
        }
        let counted = try await cluster.waitFor("the stage to count what it refused") { report in
            report.members.first { $0.layers == "0..<2" }.map { $0.refusedInputs >= 40 } ?? false
        }
        let refused = counted.members.first { $0.layers == "0..<2" }?.refusedInputs
        #expect(refused == 40, "the client key's micro-batches never reached the stage")
        #expect(counted.members.count == 4 && counted.members.allSatisfy { $0.state == "alive" })
        let again = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(again.stdout == result.stdout)
    }
}
