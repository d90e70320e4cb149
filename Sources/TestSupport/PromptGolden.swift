/// A prompt of the logits goldens and transformers' greedy continuation of it (`goldens/<model>.json`).
public struct PromptGolden: Decodable, Sendable {
    public let ids: [Int]
    public let greedy32: [Int]

    private struct Record: Decodable { let prompts: [String: PromptGolden] }

    /// Every prompt of a fixture model, by name (p1, p7, p64, p20).
    public static func all(_ model: String) throws -> [String: PromptGolden] {
        try Fixtures.record(model, as: Record.self).prompts
    }
}
