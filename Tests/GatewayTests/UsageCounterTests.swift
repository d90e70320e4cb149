import Checkpoint
import Generation
import TestSupport
import Testing
import Wire

@testable import Gateway

/// `usage.prompt_tokens` counts what the cluster will run: the prompt's tokens, and a picture's patches with its
/// markers for a question about it.
@Suite struct UsageCounterTests {
    @Test func promptTokensAreThePlannedPromptsLength() throws {
        let planner = try JobPlanner(directory: try ModelDirectory(path: Fixtures.tinyOrthus))
        let counter = UsageCounter(planner: planner)
        let text = JobSpec(mode: .text, prompt: "Hello there", maxTokens: 4)
        let tokens = try planner.promptIDs("Hello there").count
        #expect(counter.promptTokens(text, picture: false) == tokens)
        let question = JobSpec(mode: .imageToText, prompt: "Hello there", maxTokens: 4)
        let asked = try #require(counter.promptTokens(question, picture: true))
        #expect(asked >= tokens + planner.patches)
        #expect(counter.tokenLimit(text) == 4)
    }
}
