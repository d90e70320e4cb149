import Foundation
import FuzzTargets
import TestSupport
import Testing

/// Every fuzz target on its seeds and on every input a fuzzing run once crashed it with (Findings/<target>/), so a
/// fixed finding stays fixed; and the seeds are what the readers accept (a seed that is refused would start the
/// fuzzer from nothing).
@Suite struct FuzzTargetTests {
    static let targets: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("messages", MessageTarget.run), ("safetensors", FileTargets.safetensors), ("config", FileTargets.config),
        ("tokenizer", FileTargets.tokenizer), ("png", FileTargets.png), ("journal", FileTargets.journal),
    ]

    static let pictures = ["gray-16x16", "palette-30x30", "portrait-alpha-20x41"].map(Fixtures.image)

    @Test func everyTargetRunsItsSeedsAndPastFindings() throws {
        let seeds: [String: [[UInt8]]] = [
            "messages": try FuzzSeeds.messages(),
            "safetensors": try FuzzSeeds.safetensors(),
            "config": try FuzzSeeds.config(from: Fixtures.tinyOrthus + "/config.json"),
            "tokenizer": try FuzzSeeds.tokenizer(from: Fixtures.tokenizer),
            "png": try FuzzSeeds.png(files: Self.pictures),
            "journal": try FuzzSeeds.journal(),
        ]
        let findings = try #require(Bundle.module.resourceURL).appendingPathComponent("Findings").path
        for (name, run) in Self.targets {
            let inputs = try #require(seeds[name])
            #expect(!inputs.isEmpty, "\(name) has no seeds")
            for input in inputs { run(input) }
            let folder = findings + "/" + name
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for file in names.sorted() where !file.hasPrefix(".") {
                run(Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file))))
            }
        }
    }

    @Test func theSeedsAreInputsTheReadersAccept() throws {
        #expect(try FuzzSeeds.messages().allSatisfy(FuzzProbe.messageParses))
        #expect(try FuzzSeeds.safetensors().allSatisfy(FuzzProbe.safetensorsOpens))
        #expect(try FuzzSeeds.config(from: Fixtures.tinyOrthus + "/config.json").allSatisfy(FuzzProbe.configLoads))
        #expect(try FuzzSeeds.tokenizer(from: Fixtures.tokenizer).allSatisfy(FuzzProbe.tokenizerLoads))
        #expect(try FuzzSeeds.png(files: Self.pictures).allSatisfy(FuzzProbe.pngDecodes))
        #expect(try FuzzSeeds.journal().allSatisfy(FuzzProbe.journalReads))
    }
}
