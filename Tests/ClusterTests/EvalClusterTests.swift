import Evaluation
import Foundation
import TestSupport
import Testing

/// `orthus eval` on the bundled shapes model through a cluster of real processes (2 stages, an LM-head worker and 2
/// diffusion workers) judges exactly the pictures and answers it judges in one process.
@Suite(.serialized) struct EvalClusterTests {
    @Test func clusterAndSingleProcessGiveTheSamePicturesAnswersAndScores() async throws {
        let cluster = try LocalCluster(model: Fixtures.shapesModel)
        defer { cluster.stop() }
        try cluster.stage("stage-0", layers: 0..<2)
        try cluster.stage("stage-1", layers: 2..<4)
        try cluster.lmHead("lm")
        try cluster.diffusionHead("diffusion-0")
        try cluster.diffusionHead("diffusion-1")
        _ = try await cluster.waitFor("every worker") { $0.ready && $0.members.count == 5 }

        let common = ["eval", "--set", Fixtures.shapesEvalSet, "--limit", "2", "--cfg", "1.5"]
        let viaCluster = cluster.folder + "/eval-cluster"
        let alone = cluster.folder + "/eval-alone"
        async let clusterRun = OrthusProcess.output(
            common + ["--coordinator", cluster.clients, "--jobs", "6", "--out", viaCluster]
        )
        let aloneRun = try await OrthusProcess.output(common + ["--model", Fixtures.shapesModel, "--out", alone])
        let clusterResult = try await clusterRun
        #expect(clusterResult.status == 0, "cluster eval failed: \(clusterResult.stderr)")
        #expect(aloneRun.status == 0, "single-process eval failed: \(aloneRun.stderr)")
        #expect(clusterResult.stdout == aloneRun.stdout)
        #expect(clusterResult.stdout.contains("mini-GenEval    overall"), "\(clusterResult.stdout)")

        let files =
            ["results.json"]
            + (try FileManager.default.contentsOfDirectory(atPath: alone + "/images"))
            .map { "images/" + $0 }
        #expect(files.count == 1 + 6)
        for file in files {
            let a = FileManager.default.contents(atPath: alone + "/" + file)
            #expect(a != nil && a == FileManager.default.contents(atPath: viaCluster + "/" + file), "\(file) differs")
        }

        // A floor, well under what the model scores on the whole set (0.83 and 0.97), that a broken load, a wrong
        // tensor convention or a decoding error would not reach.
        let report = try JSONDecoder().decode(
            EvalReport.self,
            from: Data(contentsOf: URL(fileURLWithPath: viaCluster + "/results.json"))
        )
        #expect(report.generation.filter(\.passed).count >= 4, "\(report.generation)")
        #expect(report.answers.filter(\.passed).count >= 7, "\(report.answers)")
    }
}
