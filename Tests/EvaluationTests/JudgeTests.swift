import Foundation
import TestSupport
import Testing

@testable import Evaluation

@Suite struct JudgeTests {
    static func prompt(_ objects: [(String, String, String?)], relation: String? = nil) -> PromptCase {
        let records = objects.map { o in
            ["colour": o.0, "shape": o.1, "position": o.2].compactMapValues { $0 }
        }
        let json: [String: Any] = [
            "id": "p", "category": "c", "prompt": "p", "seed": 1, "objects": records,
            "relation": relation as Any? ?? NSNull(),
        ]
        return try! JSONDecoder().decode(PromptCase.self, from: JSONSerialization.data(withJSONObject: json))
    }

    static func object(
        _ colour: String,
        _ shape: String,
        _ x: Double,
        _ y: Double,
        _ position: String
    ) -> DetectedObject {
        DetectedObject(colour: colour, shape: shape, x: x, y: y, area: 60, position: position)
    }

    @Test func singleObjectNeedsColourShapeAndOnlyThatObject() {
        let asked = Self.prompt([("red", "circle", nil)])
        #expect(Judge.judge(asked, found: [Self.object("red", "circle", 9, 16, "left")]).passed)
        #expect(!Judge.judge(asked, found: [Self.object("red", "square", 9, 16, "left")]).passed)
        #expect(!Judge.judge(asked, found: [Self.object("blue", "circle", 9, 16, "left")]).passed)
        #expect(!Judge.judge(asked, found: []).passed)
        let extra = [Self.object("red", "circle", 9, 16, "left"), Self.object("red", "circle", 23, 16, "right")]
        #expect(!Judge.judge(asked, found: extra).passed)
    }

    @Test func positionIsChecked() {
        let asked = Self.prompt([("red", "circle", "left")])
        #expect(Judge.judge(asked, found: [Self.object("red", "circle", 9, 16, "left")]).passed)
        let verdict = Judge.judge(asked, found: [Self.object("red", "circle", 23, 16, "right")])
        #expect(!verdict.passed && verdict.detail.contains("red circle (right)"))
    }

    @Test func twoObjectsNeedBindingAndRelation() {
        let asked = Self.prompt([("red", "circle", nil), ("blue", "square", nil)], relation: "above")
        let right = [Self.object("blue", "square", 16, 23, "bottom"), Self.object("red", "circle", 16, 9, "top")]
        #expect(Judge.judge(asked, found: right).passed)
        let swapped = [Self.object("red", "circle", 16, 23, "bottom"), Self.object("blue", "square", 16, 9, "top")]
        #expect(!Judge.judge(asked, found: swapped).passed)
        let unbound = [Self.object("red", "square", 16, 9, "top"), Self.object("blue", "circle", 16, 23, "bottom")]
        #expect(!Judge.judge(asked, found: unbound).passed)
        let sideBySide = [Self.object("red", "circle", 9, 16, "left"), Self.object("blue", "square", 23, 17, "right")]
        #expect(!Judge.judge(asked, found: sideBySide).passed)
        let leftOf = Self.prompt([("red", "circle", nil), ("blue", "square", nil)], relation: "to the left of")
        #expect(Judge.judge(leftOf, found: sideBySide).passed)
    }

    @Test func answersMatchExactlyApartFromCaseSpaceAndFullStop() {
        #expect(Judge.answerMatches(" Red.\n", expected: "red"))
        #expect(Judge.answerMatches("two", expected: "two"))
        #expect(!Judge.answerMatches("red circle", expected: "red"))
        #expect(!Judge.answerMatches("", expected: "red"))
    }

    @Test func reportScoresByCategoryAndOverall() {
        var report = EvalReport()
        report.generation = [
            CaseResult(id: "a", category: "single object", text: "", passed: true, detail: "", image: ""),
            CaseResult(id: "b", category: "two objects", text: "", passed: true, detail: "", image: ""),
            CaseResult(id: "c", category: "two objects", text: "", passed: false, detail: "", image: ""),
            CaseResult(id: "d", category: "two objects", text: "", passed: false, detail: "", image: ""),
            CaseResult(id: "e", category: "two objects", text: "", passed: false, detail: "", image: ""),
        ]
        report.answers = [
            CaseResult(id: "q", category: "colour", text: "", passed: true, detail: "", image: ""),
            CaseResult(id: "r", category: "count", text: "", passed: false, detail: "", image: ""),
        ]
        #expect(report.generationScores.map(\.value) == [1, 0.25])
        #expect(report.generationOverall == 0.625)
        #expect(report.answerOverall == 0.5)
        #expect(report.table().contains("overall (mean of categories)  0.625"))
    }

    @Test func badSetsAreRefusedWithTheReason() throws {
        let scratch = try ScratchFolder("evalset")
        let folder = scratch.path
        #expect(throws: EvalError.self) { try EvalSet.load(folder: folder) }
        try Data("{\"size\": 32}".utf8).write(to: URL(fileURLWithPath: folder + "/set.json"))
        do {
            _ = try EvalSet.load(folder: folder)
            Issue.record("a set without colours was accepted")
        } catch let error as EvalError {
            #expect(error.description.contains("not an evaluation set"))
        }
    }
}
