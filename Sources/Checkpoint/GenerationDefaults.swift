import Foundation

/// A model's own sampling defaults, from `generation_config.json` in its folder (the file transformers and diffusers
/// keep them in). Orthus's published defaults apply where the file or a key is absent: guidance 5 for text-to-image
/// and 3 for the images of an interleaved answer. Keys read: `guidance_scale` (text-to-image) and
/// `interleaved_guidance_scale`; every other key is left to the tools that own it.
public struct GenerationDefaults: Sendable, Equatable {
    public var imageGuidance: Float
    public var interleavedGuidance: Float

    public init(imageGuidance: Float, interleavedGuidance: Float) {
        self.imageGuidance = imageGuidance
        self.interleavedGuidance = interleavedGuidance
    }

    /// Orthus's own: `cfg_scale` 5 in its text-to-image script, 3 for interleaved generation.
    public static let orthus = GenerationDefaults(imageGuidance: 5, interleavedGuidance: 3)

    public static let fileName = "generation_config.json"

    /// The defaults of the model in `folder`; a file that cannot be read or a value that is not a finite number >= 0
    /// is an error naming the file and key.
    public static func load(folder: String) throws -> GenerationDefaults {
        let path = folder + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return .orthus }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CheckpointError.unreadable(path: path, reason: error.localizedDescription)
        }
        struct Fields: Decodable {
            var guidance_scale: Double?
            var interleaved_guidance_scale: Double?
        }
        let fields: Fields
        do {
            fields = try JSONDecoder().decode(Fields.self, from: data)
        } catch DecodingError.typeMismatch(_, let context) where !context.codingPath.isEmpty {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw CheckpointError.malformedConfig(path: path, detail: "'\(key)' must be a number >= 0")
        } catch {
            throw CheckpointError.malformedConfig(path: path, detail: "not a JSON object of settings: \(error)")
        }
        func scale(_ key: String, _ value: Double?, _ fallback: Float) throws -> Float {
            guard let value else { return fallback }
            guard value.isFinite, value >= 0 else {
                throw CheckpointError.malformedConfig(path: path, detail: "'\(key)' must be a number >= 0")
            }
            return Float(value)
        }
        return GenerationDefaults(
            imageGuidance: try scale("guidance_scale", fields.guidance_scale, orthus.imageGuidance),
            interleavedGuidance: try scale(
                "interleaved_guidance_scale",
                fields.interleaved_guidance_scale,
                orthus.interleavedGuidance
            )
        )
    }
}
