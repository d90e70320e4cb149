import Foundation
import TestSupport
import Testing

/// `orthus bench --quick` at a tiny size keeps the command working: every figure is measured, finite and positive,
/// and the generated checkpoint loads in the published layout.
@Suite struct BenchCommandTests {
    struct Report: Decodable {
        struct Figure: Decodable {
            let section: String
            let name: String
            let value: Double
            let ratio: Double?
        }
        let figures: [Figure]
    }

    @Test func aQuickBenchAtATinySizeMeasuresEveryFigure() async throws {
        let scratch = try ScratchFolder("bench")
        let folder = scratch.path
        let result = try await OrthusProcess.output([
            "bench", "--quick", "--hidden", "64", "--layers", "2", "--heads", "4", "--head-width", "64",
            "--template", Fixtures.tinyOrthus, "--model-dir", folder + "/model", "--json", folder + "/bench.json",
            "--peer-script", "none", "--kernel-size", "256",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONDecoder().decode(
            Report.self,
            from: try Data(contentsOf: URL(fileURLWithPath: folder + "/bench.json"))
        )
        let names = Set(report.figures.map(\.name))
        for expected in [
            "read bandwidth, 1 thread", "decode weight bytes/s, batch 1", "decode weight bytes/s, batch 16",
            "prefill, 128 tokens", "diffusion head, 2 rows", "diffusion head, 256 rows",
            "text-to-image per patch, 10 DDIM steps", "f32 weights 256x256, 1 row(s)",
            "bf16 weights 256x256, 16 row(s)", "prefill product 512x2048→5632, bf16",
            "diffusion head product 64x1536→1536, bf16",
            "time to first token", "time per output token", "time per image (10 DDIM steps)", "pipeline efficiency",
            "overlap: time/token with images / alone", "stage 0..<1 busy fraction", "stage 1..<2 busy fraction",
        ] {
            #expect(names.contains(expected), "missing \(expected)")
        }
        #expect(report.figures.allSatisfy { $0.value.isFinite && $0.value > 0 })
        #expect(report.figures.compactMap(\.ratio).allSatisfy { $0.isFinite && $0 > 0 })
        #expect(result.stdout.contains("decode tokens/s, batch 4"))
    }
}
