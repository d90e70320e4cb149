import Foundation

/// Paths of the committed fixtures (built by ops/reference/make_fixtures.py).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    static let tinyOrthus = root + "/tiny-orthus"
    static let tinyChameleonGQA = root + "/tiny-chameleon-gqa"
    static func golden(_ name: String) -> String { root + "/goldens/" + name }

    struct Prompt: Decodable {
        let ids: [Int]
        let greedy32: [Int]
    }

    struct Record: Decodable { let prompts: [String: Prompt] }

    static func prompts(_ model: String) throws -> [String: Prompt] {
        try JSONDecoder().decode(Record.self, from: Data(contentsOf: URL(fileURLWithPath: golden(model + ".json"))))
            .prompts
    }
}
