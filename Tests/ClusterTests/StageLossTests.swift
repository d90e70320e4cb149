import Coordinator
import Foundation
import TestSupport
import Testing

/// A stage that leaves takes its KV caches with it: the jobs it served fail with a message naming it, and once a
/// replacement for its layers registers, the pipeline forms again and new jobs give generate's output.
@Suite struct StageLossTests {
    @Test func jobsOnALostStageFailClearlyAndAReplacementRestoresService() async throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try cluster.stage("stage-0", layers: 0..<2)
        try cluster.stage("stage-1", layers: 2..<4)
        try cluster.lmHead("lm")
        try cluster.diffusionHead("diffusion")
        let ready = try await cluster.waitFor("a ready cluster") { $0.ready && $0.pipeline.count == 2 }

        let long = Task {
            try await cluster.submit([
                "--prompt", "A long image", "--image-out", cluster.folder + "/x.png", "--steps", "1000",
            ])
        }
        _ = try await cluster.waitFor("the image job under way") { report in report.jobs.contains { $0.patches > 0 } }
        let lost = try #require(cluster.process("stage-1"))
        lost.terminate()
        let failed = try await long.value
        #expect(
            failed.status != 0 && failed.stderr.contains("layers 2..<4") && failed.stderr.contains("left the pipeline")
        )
        let broken = try await cluster.status()
        #expect(!broken.ready && broken.failedJobs == 1)

        try cluster.stage("stage-1b", layers: 2..<4)
        let restored = try await cluster.waitFor("a new pipeline") { $0.ready }
        #expect(restored.pipeline.count == 2 && restored.pipeline != ready.pipeline)
        let text = ReferenceJob.all[0]
        let result = try await cluster.submit(text.arguments(out: cluster.folder))
        #expect(result.status == 0 && result.stdout == ReferenceJob.expected[text.name]?.stdout)
    }
}
