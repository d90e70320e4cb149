import Foundation
import Tensor

/// Paths of the committed fixtures (built by ops/reference/make_fixtures.py).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static let tinyOrthus = root + "/tiny-orthus"

    static func golden(_ name: String) throws -> (shape: [Int], values: [Float]) {
        try NumpyFile.read(root + "/goldens/\(name).npy")
    }

    static func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}
