import Checkpoint
import Foundation
import TestSupport
import Testing

/// A model's own guidance from its `generation_config.json`: Orthus's defaults without the file or a key, the file's
/// values with it, and an error naming the file and key for a value that is not a scale.
@Suite struct GenerationDefaultsTests {
    @Test func theFileGivesTheModelsGuidanceAndOrthusFillsTheRest() throws {
        let model = try TemporaryModel(empty: ())
        #expect(try GenerationDefaults.load(folder: model.path) == .orthus)
        #expect(GenerationDefaults.orthus == GenerationDefaults(imageGuidance: 5, interleavedGuidance: 3))

        try model.write(GenerationDefaults.fileName, Data(#"{"guidance_scale": 1.5, "do_sample": true}"#.utf8))
        #expect(try GenerationDefaults.load(folder: model.path) == .init(imageGuidance: 1.5, interleavedGuidance: 3))
        try model.write(
            GenerationDefaults.fileName,
            Data(#"{"guidance_scale": 2, "interleaved_guidance_scale": 0}"#.utf8)
        )
        #expect(try GenerationDefaults.load(folder: model.path) == .init(imageGuidance: 2, interleavedGuidance: 0))

        for bad in [#"{"guidance_scale": "high"}"#, #"{"guidance_scale": -1}"#, #"{"guidance_scale": true}"#] {
            try model.write(GenerationDefaults.fileName, Data(bad.utf8))
            #expect {
                try GenerationDefaults.load(folder: model.path)
            } throws: {
                "\($0)".contains("generation_config.json") && "\($0)".contains("guidance_scale")
            }
        }
        try model.write(GenerationDefaults.fileName, Data("[1]".utf8))
        #expect(throws: CheckpointError.self) { try GenerationDefaults.load(folder: model.path) }
        // The bundled model's, chosen on its validation set.
        let bundled = try ModelDirectory(path: Fixtures.shapesModel).generationDefaults
        #expect(bundled == .init(imageGuidance: 1.5, interleavedGuidance: 1.5))
    }
}
