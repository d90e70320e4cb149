import Foundation

/// Whether a generated picture shows what its prompt asked for, GenEval-style: exactly the objects asked for, each
/// of the right colour and shape, at the named position or in the named relation to each other.
public enum Judge {
    /// Centroids must be this many pixels apart along the relation's axis, and farther than along the other axis.
    static let relationMargin = 4.0

    public struct Verdict: Sendable {
        public let passed: Bool
        /// What was found, or why it fails.
        public let detail: String
    }

    public static func judge(_ prompt: PromptCase, found: [DetectedObject]) -> Verdict {
        let listing = found.isEmpty ? "nothing found" : found.map(\.description).joined(separator: ", ")
        guard found.count == prompt.objects.count else {
            return Verdict(passed: false, detail: "\(found.count) objects, \(prompt.objects.count) asked: \(listing)")
        }
        let orders = found.count == 2 ? [[0, 1], [1, 0]] : [[0]]
        for order in orders {
            let objects = order.map { found[$0] }
            guard zip(prompt.objects, objects).allSatisfy(matches) else { continue }
            if let name = prompt.relation, let relation = Relation(rawValue: name) {
                guard holds(relation, objects[0], objects[1]) else {
                    return Verdict(passed: false, detail: "not \(name): \(listing)")
                }
            }
            return Verdict(passed: true, detail: listing)
        }
        return Verdict(passed: false, detail: "wrong objects: \(listing)")
    }

    static func matches(_ expected: ExpectedObject, _ found: DetectedObject) -> Bool {
        expected.colour == found.colour && expected.shape == found.shape
            && (expected.position.map { $0 == found.position } ?? true)
    }

    /// `second` is where the relation puts it, seen from `first` ("first above second").
    static func holds(_ relation: Relation, _ first: DetectedObject, _ second: DetectedObject) -> Bool {
        let dx = second.x - first.x
        let dy = second.y - first.y
        switch relation {
        case .above: return dy > relationMargin && abs(dy) > abs(dx)
        case .below: return -dy > relationMargin && abs(dy) > abs(dx)
        case .leftOf: return dx > relationMargin && abs(dx) > abs(dy)
        case .rightOf: return -dx > relationMargin && abs(dx) > abs(dy)
        }
    }

    /// Exact match of a one-word answer: case, surrounding space and a final full stop are ignored.
    public static func answerMatches(_ answer: String, expected: String) -> Bool {
        var text = answer.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        return text == expected.lowercased()
    }
}
