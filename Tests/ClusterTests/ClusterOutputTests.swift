import Checkpoint
import ClusterProtocol
import Foundation
import TestSupport
import Testing

/// Whole clusters of real processes: every mode, submitted together, gives exactly the single-process outputs on
/// any number of stages and pool workers.
@Suite(.serialized) struct ClusterOutputTests {
    struct Topology: Sendable, CustomStringConvertible {
        let stages: [Range<Int>]
        let lmHeads: Int
        let diffusionHeads: Int
        var description: String { "\(stages.count) stage(s), \(lmHeads) LM, \(diffusionHeads) diffusion" }
    }

    @Test(
        arguments: [
            Topology(stages: [0..<4], lmHeads: 1, diffusionHeads: 1),
            Topology(stages: [0..<2, 2..<4], lmHeads: 2, diffusionHeads: 2),
            Topology(stages: [0..<1, 1..<3, 3..<4], lmHeads: 1, diffusionHeads: 2),
        ]
    )
    func everyModeSubmittedTogetherEqualsGenerate(topology: Topology) async throws {
        let expected = ReferenceJob.expected
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        for (index, layers) in topology.stages.enumerated() {
            try cluster.stage("stage-\(index)", layers: layers, extra: ["--list-tensors"])
        }
        for index in 0..<topology.lmHeads { try cluster.lmHead("lm-\(index)") }
        for index in 0..<topology.diffusionHeads { try cluster.diffusionHead("diffusion-\(index)") }
        let members = topology.stages.count + topology.lmHeads + topology.diffusionHeads
        let ready = try await cluster.waitFor("every worker") { $0.ready && $0.members.count == members }
        #expect(ready.pipeline.count == topology.stages.count)
        #expect(ready.members.filter { $0.role == "diffusion-head" }.count == topology.diffusionHeads)

        let outcomes = try await withThrowingTaskGroup(of: (String, OrthusProcess.Output, String).self) { group in
            for job in ReferenceJob.all {
                let out = cluster.folder + "/" + job.name
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                group.addTask { (job.name, try await cluster.submit(job.arguments(out: out)), out) }
            }
            var all: [(String, OrthusProcess.Output, String)] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        for (name, result, out) in outcomes {
            let job = ReferenceJob.all.first { $0.name == name }!
            #expect(result.status == 0, "\(name) failed on \(topology): \(result.stderr)")
            let outcome = ReferenceJob.Outcome(job: job, folder: out, stdout: result.stdout)
            #expect(outcome == expected[name], "\(name) on \(topology) differs from generate")
        }
        let report = try await cluster.status()
        #expect(report.completedJobs == ReferenceJob.all.count && report.failedJobs == 0 && report.jobs.isEmpty)
        // Every stage reports its KV budget, and once the jobs are done it holds no KV positions: all released.
        let released = try await cluster.waitFor("the stages to report their caches released") { report in
            let stages = report.members.filter { $0.role == "stage" }
            return stages.count == topology.stages.count && stages.allSatisfy { $0.kvBudget > 0 && $0.kvPositions == 0 }
        }
        #expect(released.members.filter { $0.role == "stage" }.allSatisfy { $0.refusedInputs == 0 })

        // Each stage mapped exactly its own layers' tensors (plus the embeddings on the first and the final norm
        // on the last), as the checkpoint's own index names them.
        let weightMap = try ModelDirectory(path: Fixtures.tinyOrthus).weightMap.keys
        for (index, layers) in topology.stages.enumerated() {
            let listed = Set(
                cluster.log("stage-\(index)").split(separator: "\n").filter { $0.hasPrefix("  ") }
                    .map { $0.trimmingCharacters(in: .whitespaces) }
            )
            let own = Set(
                weightMap.filter { name in
                    if let layer = Self.layerIndex(name) { return layers.contains(layer) }
                    if name == "model.embed_tokens.weight" || name == "model.codebook_in.weight" {
                        return layers.lowerBound == 0
                    }
                    return name == "model.norm.weight" && layers.upperBound == 4
                }
            )
            #expect(!own.isEmpty && listed == own, "stage \(layers) mapped \(listed.symmetricDifference(own))")
        }
    }

    /// The layer of `model.layers.N.…`, or nil for other tensors.
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("model.layers.") else { return nil }
        return Int(name.dropFirst("model.layers.".count).prefix { $0.isNumber })
    }
}
