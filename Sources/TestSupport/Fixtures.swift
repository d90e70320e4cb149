import Foundation
import Tensor

/// The committed test fixtures (built by ops/reference/make_fixtures.py) and the comparisons the golden tests use.
public enum Fixtures {
    /// `Tests/Fixtures` of this package.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures").path
    /// The bf16, two-shard Orthus checkpoint with every Orthus part.
    public static let tinyOrthus = root + "/tiny-orthus"
    /// The f16, single-file, grouped-query-attention Chameleon checkpoint without Orthus parts.
    public static let tinyChameleonGQA = root + "/tiny-chameleon-gqa"
    /// The package's own folder.
    public static let repository = URL(fileURLWithPath: root).deletingLastPathComponent().deletingLastPathComponent()
        .path
    /// The bundled trained model (ops/train) and the evaluation set it is judged on.
    public static let shapesModel = repository + "/cluster/models/orthus-shapes"
    public static let shapesEvalSet = repository + "/cluster/eval/shapes"
    /// The shared tokenizer.json.
    public static let tokenizer = tinyOrthus + "/tokenizer.json"

    /// A path under `Tests/Fixtures`.
    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// A test image, `images/<name>.png`.
    public static func image(_ name: String) -> String { root + "/images/\(name).png" }

    /// A golden array, `goldens/<name>.npy`.
    public static func golden(_ name: String) throws -> (shape: [Int], values: [Float]) {
        try NumpyFile.read(root + "/goldens/\(name).npy")
    }

    /// A golden JSON record, `goldens/<name>.json`.
    public static func record<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: URL(fileURLWithPath: root + "/goldens/\(name).json")))
    }

    /// Largest |a − b|.
    public static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// Largest |ours − reference| relative to the largest |reference|.
    public static func relativeError(_ ours: [Float], _ reference: [Float]) -> Float {
        maxAbsDifference(ours, reference) / (reference.map(abs).max() ?? 1)
    }
}
