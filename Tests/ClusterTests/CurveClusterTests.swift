import Foundation
import TestSupport
import Testing

/// A cluster started with CurveZMQ keys: every link is authenticated and encrypted; an admitted client runs a job to
/// generate's output, while a client without keys or with a key the cluster does not admit gets no answer.
@Suite struct CurveClusterTests {
    @Test func onlyAdmittedClientsReachACurveCluster() async throws {
        let scratch = try ScratchFolder("keys")
        let keys = scratch.file("cluster")
        let strangers = scratch.file("strangers")
        let made = try await OrthusProcess.output(["keys", keys, "--client", "alice"])
        #expect(made.status == 0, "\(made.stderr)")
        _ = try await OrthusProcess.output(["keys", strangers, "--client", "mallory"])
        // Mallory knows the cluster's public key but holds a key the cluster never admitted.
        try FileManager.default.removeItem(atPath: strangers + "/cluster.pub")
        try FileManager.default.copyItem(atPath: keys + "/cluster.pub", toPath: strangers + "/cluster.pub")

        let secure = ["--curve-dir", keys]
        let cluster = try LocalCluster(
            coordinatorArguments: secure,
            workerArguments: secure,
            clientArguments: secure + ["--key-name", "alice"]
        )
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<2, 2..<4])
        let text = ReferenceJob.all[0]
        let result = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(result.status == 0 && result.stdout == ReferenceJob.expected[text.name]?.stdout)

        for arguments in [[], ["--curve-dir", strangers, "--key-name", "mallory"]] {
            let refused = try await OrthusProcess.output(
                ["status", "--coordinator", cluster.clients, "--timeout", "1"] + arguments
            )
            #expect(refused.status != 0 && refused.stderr.contains("no answer from the coordinator"))
        }
    }
}
