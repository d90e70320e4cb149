import ClusterClient
import ClusterProtocol
import Foundation
import TestSupport
import Testing
import Wire

/// Oversized client input, sent as a hostile client would: noise far beyond any job's shape. Below the client
/// socket's message limit it is refused by name before its values are read; above it libzmq drops it unread. Either
/// way the coordinator's peak memory hardly moves and it goes on serving.
@Suite struct OversizeTests {
    @Test func oversizedNoiseIsRefusedWithoutBeingHeld() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try await cluster.startWorkers(stages: [0..<4])
        let coordinator = try #require(cluster.process("coordinator")?.processIdentifier)
        let before = try ClientFloodTests.peakMemory(coordinator)
        let client = try ClusterClient(endpoint: cluster.clients)
        let spec = JobSpec(mode: .textToImage, prompt: "a red circle", maxTokens: 0, seed: 1, guidance: 3, steps: 5)
        func submit(images: Int) async throws -> String {
            let values = [Float](repeating: 0.5, count: images * 16 * 16)
            do {
                _ = try await client.submit(spec, noise: ([images, 16, 16], values), acceptTimeout: .seconds(3))
                    .collect()
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        // 2 MB of noise: refused, naming the shape the job can use.
        let refused = try await submit(images: 2000)
        #expect(refused.contains("noise") && refused.contains("[2000, 16, 16]"), "\(refused)")
        // 195 MiB, over the 64 MiB client message limit: dropped by libzmq before it is allocated, so no answer.
        let dropped = try await submit(images: 200_000)
        #expect(dropped.contains("no answer"), "\(dropped)")
        let after = try ClientFloodTests.peakMemory(coordinator)
        #expect(after - before < 32 << 20, "the coordinator's peak memory grew by \((after - before) >> 20) MiB")
        let result = try await cluster.submit(["--prompt", "hi", "--max-tokens", "3"])
        #expect(result.status == 0, "\(result.stderr)")
    }
}
