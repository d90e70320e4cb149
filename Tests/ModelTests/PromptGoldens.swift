import Foundation
import TestSupport

/// The prompts of the logits goldens and transformers' greedy continuations of them.
struct PromptGolden: Decodable {
    let ids: [Int]
    let greedy32: [Int]

    private struct Record: Decodable { let prompts: [String: PromptGolden] }

    static func all(_ model: String) throws -> [String: PromptGolden] {
        try Fixtures.record(model, as: Record.self).prompts
    }
}
