import Foundation
import ImageIO

/// One judged case: a generated picture or an answer.
public struct CaseResult: Codable, Sendable {
    public let id: String
    public let category: String
    /// The prompt, or the question.
    public let text: String
    public let passed: Bool
    /// What the detector found, or the answer given.
    public let detail: String
    /// The picture, relative to the report's folder: the generated one, or the one asked about.
    public let image: String

    public init(id: String, category: String, text: String, passed: Bool, detail: String, image: String) {
        (self.id, self.category, self.text, self.passed, self.detail, self.image) =
            (id, category, text, passed, detail, image)
    }
}

/// Scores by category, as a table, `results.json` and an HTML page of every picture marked pass or fail.
public struct EvalReport: Codable, Sendable {
    public var generation: [CaseResult] = []
    public var answers: [CaseResult] = []

    public init() {}

    public struct Score: Sendable, Equatable {
        public let category: String
        public let passed: Int
        public let total: Int
        public var value: Double { total == 0 ? 0 : Double(passed) / Double(total) }
    }

    static func scores(_ results: [CaseResult]) -> [Score] {
        var order: [String] = []
        for r in results where !order.contains(r.category) { order.append(r.category) }
        return order.map { c in
            let cases = results.filter { $0.category == c }
            return Score(category: c, passed: cases.filter(\.passed).count, total: cases.count)
        }
    }

    public var generationScores: [Score] { Self.scores(generation) }
    public var answerScores: [Score] { Self.scores(answers) }

    /// GenEval's overall score: the mean of the category scores (so the many two-object prompts do not outweigh
    /// the rest).
    public var generationOverall: Double {
        let s = generationScores
        return s.isEmpty ? 0 : s.map(\.value).reduce(0, +) / Double(s.count)
    }

    /// VQA accuracy over all questions.
    public var answerOverall: Double {
        answers.isEmpty ? 0 : Double(answers.filter(\.passed).count) / Double(answers.count)
    }

    /// The table printed at the end of a run.
    public func table() -> String {
        var lines = ["task            category         passed  total  score"]
        func row(_ task: String, _ s: Score) {
            lines.append(
                task.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + s.category.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + String(format: "%7d %6d  %5.3f", s.passed, s.total, s.value)
            )
        }
        if !generation.isEmpty {
            generationScores.forEach { row("mini-GenEval", $0) }
            lines.append(String(format: "mini-GenEval    overall (mean of categories)  %5.3f", generationOverall))
        }
        if !answers.isEmpty {
            answerScores.forEach { row("VQA", $0) }
            lines.append(
                String(
                    format: "VQA             overall         %7d %6d  %5.3f",
                    answers.filter(\.passed).count,
                    answers.count,
                    answerOverall
                )
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A page with the table and every case: pictures drawn 4x, framed green (pass) or red (fail).
    public func html(title: String) -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func cells(_ results: [CaseResult], expected: (CaseResult) -> String) -> String {
            results.map { r in
                """
                <figure class="\(r.passed ? "pass" : "fail")"><img src="\(escape(r.image))" alt="\(escape(r.id))">\
                <figcaption><b>\(escape(r.text))</b><br>\(escape(expected(r)))</figcaption></figure>
                """
            }.joined(separator: "\n")
        }
        return """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>\(escape(title))</title><style>
            body { font-family: sans-serif; margin: 1.5em; }
            figure { display: inline-block; width: 150px; margin: 4px; vertical-align: top; font-size: 12px; }
            img { width: 128px; height: 128px; image-rendering: pixelated; border: 4px solid; }
            .pass img { border-color: #2a2; } .fail img { border-color: #d22; }
            </style></head><body>
            <h1>\(escape(title))</h1>
            <pre>\(escape(table()))</pre>
            <h2>Text to image</h2>
            \(cells(generation) { $0.detail })
            <h2>Questions</h2>
            \(cells(answers) { "answer: \($0.detail)" })
            </body></html>

            """
    }

    /// The generated pictures side by side, `columns` to a row, each framed green (pass) or red (fail).
    public static func grid(_ tiles: [(Image8, Bool)], columns: Int, scale: Int = 2, frame: Int = 2) -> Image8 {
        let side = (tiles.map { max($0.0.width, $0.0.height) }.max() ?? 0) * scale + 2 * frame
        let rows = (tiles.count + columns - 1) / columns
        let width = columns * side
        var pixels = [UInt8](repeating: 255, count: max(1, rows * side * width * 3))
        for (n, (image, passed)) in tiles.enumerated() {
            let (left, top) = ((n % columns) * side, (n / columns) * side)
            let border: [UInt8] = passed ? [34, 170, 34] : [221, 34, 34]
            for y in 0..<side {
                for x in 0..<side {
                    let (ix, iy) = ((x - frame) / scale, (y - frame) / scale)
                    let inside = x >= frame && y >= frame && ix < image.width && iy < image.height
                    let source =
                        inside ? Array(image.pixels[((iy * image.width + ix) * image.channels)...].prefix(3)) : border
                    let target = ((top + y) * width + left + x) * 3
                    pixels.replaceSubrange(target..<(target + 3), with: source)
                }
            }
        }
        return Image8(width: max(1, width), height: max(1, rows * side), channels: 3, pixels: pixels)
    }
}
