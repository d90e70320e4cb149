import Foundation
import FuzzTargets
import TestSupport
import Testing

/// Every fuzz target on its seeds and on every input a fuzzing run once crashed it with (Findings/<target>/), so a
/// fixed finding stays fixed; and the seeds are what the readers accept (a seed that is refused would start the
/// fuzzer from nothing).
@Suite struct FuzzTargetTests {
    @Test(arguments: FuzzTarget.all.map(\.name))
    func aTargetRunsItsSeedsAndPastFindings(_ name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let seeds = try target.seeds(Fixtures.root)
        #expect(!seeds.isEmpty, "\(name) has no seeds")
        for seed in seeds { target.run(seed) }
        let findings = try #require(Bundle.module.resourceURL).appendingPathComponent("Findings/" + name).path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: findings)) ?? []  // none yet: no folder
        for file in names.sorted() where !file.hasPrefix(".") {
            target.run(Array(try Data(contentsOf: URL(fileURLWithPath: findings + "/" + file))))
        }
    }

    @Test func theSeedsAreInputsTheReadersAccept() throws {
        let probes: [String: ([UInt8]) -> Bool] = [
            "messages": FuzzProbe.messageParses, "safetensors": FuzzProbe.safetensorsOpens,
            "config": FuzzProbe.configLoads, "tokenizer": FuzzProbe.tokenizerLoads, "png": FuzzProbe.pngDecodes,
            "journal": FuzzProbe.journalReads,
        ]
        for target in FuzzTarget.all {
            let accepts = try #require(probes[target.name], "no probe for \(target.name)")
            for (index, seed) in try target.seeds(Fixtures.root).enumerated() {
                #expect(accepts(seed), "seed \(index) of \(target.name) is refused")
            }
        }
    }
}
