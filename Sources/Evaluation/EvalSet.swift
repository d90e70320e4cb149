import Foundation

/// An evaluation set (`set.json`, written by `ops/train/make_eval_set.py`): the world's palette and anchors, the
/// prompts whose pictures are judged, and the questions with one-word answers.
public struct EvalSet: Decodable, Sendable {
    public let size: Int
    public let background: [Int]
    public let colours: [String: [Int]]
    public let anchors: [String: [Double]]
    public let prompts: [PromptCase]
    public let questions: [QuestionCase]
    /// The folder the set was read from; question images are relative to it.
    public private(set) var folder = ""

    enum CodingKeys: String, CodingKey {
        case size, background, colours, anchors, prompts, questions
    }

    /// Reads `folder/set.json` and checks that it describes a usable set.
    public static func load(folder: String) throws -> EvalSet {
        let path = (folder as NSString).appendingPathComponent("set.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvalError("no evaluation set at \(path)")
        }
        var set: EvalSet
        do {
            set = try JSONDecoder().decode(EvalSet.self, from: data)
        } catch {
            throw EvalError("\(path) is not an evaluation set: \(error)")
        }
        set.folder = folder
        try set.validate(path)
        return set
    }

    func validate(_ path: String) throws {
        guard size > 0, background.count == 3, !colours.isEmpty, !anchors.isEmpty else {
            throw EvalError("\(path): size, background, colours and anchors are required")
        }
        for (name, rgb) in colours where rgb.count != 3 {
            throw EvalError("\(path): colour \(name) needs three components")
        }
        for (name, xy) in anchors where xy.count != 2 {
            throw EvalError("\(path): anchor \(name) needs two coordinates")
        }
        for p in prompts {
            guard (1...2).contains(p.objects.count) else {
                throw EvalError("\(path): prompt \(p.id) asks for \(p.objects.count) objects (1 or 2 are judged)")
            }
            if let relation = p.relation, Relation(rawValue: relation) == nil {
                throw EvalError("\(path): prompt \(p.id) has an unknown relation '\(relation)'")
            }
            for o in p.objects where colours[o.colour] == nil {
                throw EvalError("\(path): prompt \(p.id) asks for colour '\(o.colour)', which the palette lacks")
            }
        }
    }

    /// The path of a question's picture.
    public func imagePath(_ question: QuestionCase) -> String {
        (folder as NSString).appendingPathComponent(question.image)
    }
}

/// A text-to-image prompt and what a correct picture shows.
public struct PromptCase: Decodable, Sendable {
    public let id: String
    public let category: String
    public let prompt: String
    public let objects: [ExpectedObject]
    public let relation: String?
    public let seed: UInt64
}

public struct ExpectedObject: Decodable, Sendable {
    public let colour: String
    public let shape: String
    public let position: String?
}

/// A question about a picture and its one-word answer.
public struct QuestionCase: Decodable, Sendable {
    public let id: String
    public let category: String
    public let image: String
    public let question: String
    public let answer: String
}

/// Where the second object of a two-object prompt is, seen from the first: "a red circle above a blue square".
public enum Relation: String, Sendable {
    case above
    case below
    case leftOf = "to the left of"
    case rightOf = "to the right of"
}

public struct EvalError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
