import ArgumentParser
import Checkpoint
import ClusterClient
import ClusterProtocol
import Coordinator
import Engine
import Evaluation
import Foundation
import Generation
import Heads
import ImageIO
import Tokenizer
import Wire

/// `orthus eval`: the shapes evaluation (mini-GenEval and VQA) in this process (--model) or through a cluster.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Judge a model on an evaluation set: generated pictures by a detector, answers by exact match.",
        discussion: """
            With --model the model runs in this process; without it every case is a job on the cluster at \
            --coordinator (--jobs at a time). Each prompt is drawn with its own seed, so the same set gives the same \
            pictures and scores either way. Writes results.json, report.html (every picture, framed pass or fail), \
            grid.png and the pictures to --out, and prints the scores by category.
            """
    )

    @Option(help: "The evaluation set's folder (set.json, images/).")
    var set = "cluster/eval/shapes"

    @Option(help: "Run in this process with this model folder, instead of on a cluster.")
    var model: String?

    @OptionGroup var connection: ClientConnection

    @Option(help: "Folder for results.json, report.html, grid.png and the pictures.")
    var out = "eval-out"

    @Option(help: "DDIM steps per image patch.")
    var steps = 100

    @Option(
        help: """
            Classifier-free guidance scale (default: the model's own, 'guidance_scale' in its generation_config.json, \
            else 5).
            """
    )
    var cfg: Float?

    @Option(help: "Cases in flight at once on a cluster.")
    var jobs = 8

    @Option(help: "Judge only the first N prompts and N questions of each category (a quick check).")
    var limit: Int?

    @Option(help: "Pictures per row of grid.png.")
    var gridColumns = 16

    @Option(help: "Magnification of the pictures in grid.png.")
    var gridScale = 2

    @Option(help: "Seconds to wait for the coordinator to accept each job.")
    var timeout: Double = 60

    func validate() throws {
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000") }
        guard jobs > 0, gridColumns > 0, gridScale > 0 else {
            throw ValidationError("--jobs, --grid-columns and --grid-scale must be positive")
        }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        if model != nil, connection.coordinator != nil {
            throw ValidationError(
                "--model runs the evaluation in this process and --coordinator on a cluster: give one of them"
            )
        }
    }

    func run() async throws {
        let evalSet = try EvalSet.load(folder: set)
        let prompts = Self.firstOfEachCategory(evalSet.prompts, limit: limit, category: \.category)
        let questions = Self.firstOfEachCategory(evalSet.questions, limit: limit, category: \.category)
        for folder in ["images", "questions"] {
            try FileManager.default.createDirectory(
                atPath: (out as NSString).appendingPathComponent(folder),
                withIntermediateDirectories: true
            )
        }
        let runner: any CaseRunner =
            if let model { try LocalRunner(modelPath: model) } else { ClusterRunner(connection: connection) }
        let parameters = Parameters(steps: steps, cfg: cfg, timeout: timeout)
        let tally = Tally(total: prompts.count + questions.count)

        let pictures = try await runner.run(prompts, jobs: jobs) { p in
            let png = try await runner.picture(p.prompt, seed: p.seed, parameters)
            tally.step()
            return png
        }
        let answers = try await runner.run(questions, jobs: jobs) { q in
            let png = try Data(contentsOf: URL(fileURLWithPath: evalSet.imagePath(q)))
            let answer = try await runner.answer(q.question, picture: png, parameters)
            tally.step()
            return answer
        }
        tally.finish()

        let report = try judge(evalSet, prompts: prompts, pictures: pictures, questions: questions, answers: answers)
        print(report.table(), terminator: "")
        StandardStreams.err("wrote results.json, report.html, grid.png and the pictures to \(out)/\n")
    }

    /// Scores every case and writes the report's files.
    func judge(
        _ evalSet: EvalSet,
        prompts: [PromptCase],
        pictures: [Data],
        questions: [QuestionCase],
        answers: [String]
    ) throws -> EvalReport {
        let detector = ShapeDetector(set: evalSet)
        var report = EvalReport()
        var tiles: [(Image8, Bool)] = []
        for (p, png) in zip(prompts, pictures) {
            let image = try PNGCodec.decode(png)
            let verdict = Judge.judge(p, found: detector.detect(image))
            let name = "images/\(p.id).png"
            try png.write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent(name)))
            report.generation.append(
                CaseResult(
                    id: p.id,
                    category: p.category,
                    text: p.prompt,
                    passed: verdict.passed,
                    detail: verdict.detail,
                    image: name
                )
            )
            tiles.append((image, verdict.passed))
        }
        for (q, answer) in zip(questions, answers) {
            let name = "questions/" + (q.image as NSString).lastPathComponent
            let copy = (out as NSString).appendingPathComponent(name)
            try? FileManager.default.removeItem(atPath: copy)  // an earlier run's copy, if any; the copy below reports
            try FileManager.default.copyItem(atPath: evalSet.imagePath(q), toPath: copy)
            let trimmed = answer.trimmingCharacters(in: .whitespacesAndNewlines)
            report.answers.append(
                CaseResult(
                    id: q.id,
                    category: q.category,
                    text: q.question + " (" + q.answer + ")",
                    passed: Judge.answerMatches(trimmed, expected: q.answer),
                    detail: trimmed,
                    image: name
                )
            )
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(
            to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("results.json"))
        )
        let title = "orthus eval: " + (model ?? "cluster at \(connection.endpoint)")
        try report.html(title: title).write(
            toFile: (out as NSString).appendingPathComponent("report.html"),
            atomically: true,
            encoding: .utf8
        )
        if !tiles.isEmpty {
            try PNGCodec.write(
                EvalReport.grid(tiles, columns: gridColumns, scale: gridScale),
                to: (out as NSString).appendingPathComponent("grid.png")
            )
        }
        return report
    }

    static func firstOfEachCategory<T>(_ cases: [T], limit: Int?, category: (T) -> String) -> [T] {
        guard let limit else { return cases }
        var taken: [String: Int] = [:]
        return cases.filter { c in
            taken[category(c), default: 0] += 1
            return taken[category(c)]! <= limit
        }
    }

    struct Parameters: Sendable {
        let steps: Int
        /// nil: the model's own.
        let cfg: Float?
        let timeout: Double
    }

    /// Cases done so far, drawn as a progress bar; cases finish on several tasks at once.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private let progress = ProgressBar(unit: "cases")
        private let total: Int
        private var done = 0

        init(total: Int) { self.total = total }

        func step() {
            lock.lock()
            defer { lock.unlock() }
            done += 1
            progress.update(done: done, total: total)
        }

        func finish() {
            lock.lock()
            defer { lock.unlock() }
            progress.finish()
        }
    }
}

/// Where the cases run: this process, or a cluster.
protocol CaseRunner: Sendable {
    /// A text-to-image picture, PNG bytes.
    func picture(_ prompt: String, seed: UInt64, _ parameters: EvalCommand.Parameters) async throws -> Data
    /// The greedy answer to a question about a picture (PNG bytes).
    func answer(_ question: String, picture: Data, _ parameters: EvalCommand.Parameters) async throws -> String
    /// `work` on every case, results in the cases' order.
    func run<C: Sendable, R: Sendable>(
        _ cases: [C],
        jobs: Int,
        _ work: @escaping @Sendable (C) async throws -> R
    )
        async throws -> [R]
}

/// One case after another in this process (the model's products use all of the process's compute threads). The
/// model is not Sendable; `run` never lets two cases use it at once, and the command runs one `run` at a time.
struct LocalRunner: CaseRunner, @unchecked Sendable {
    let engine: LocalEngine

    init(modelPath: String) throws {
        engine = try LocalEngine(directory: try ModelDirectory(path: modelPath))
    }

    func picture(_ prompt: String, seed: UInt64, _ parameters: EvalCommand.Parameters) async throws -> Data {
        let request = GenerationRequest(
            mode: .textToImage,
            prompt: prompt,
            seed: seed,
            guidance: parameters.cfg,
            steps: parameters.steps
        )
        let answer = try engine.run(LocalEngine.Job(request))
        for case .image(let latents) in answer.pieces { return try PNGCodec.encode(try engine.decode(latents)) }
        throw ValidationError("'\(prompt)' finished without an image")
    }

    func answer(_ question: String, picture: Data, _ parameters: EvalCommand.Parameters) async throws -> String {
        let request = GenerationRequest(mode: .imageToText, prompt: question, maxTokens: 8)
        let answer = try engine.run(LocalEngine.Job(request, picture: try PNGCodec.decode(picture)))
        var detokenizer = StreamingDetokenizer(tokenizer: engine.tokenizer)
        var text = ""
        for token in answer.tokens { text += try detokenizer.push(token) }
        return text + detokenizer.finish()
    }

    func run<C: Sendable, R: Sendable>(
        _ cases: [C],
        jobs: Int,
        _ work: @escaping @Sendable (C) async throws -> R
    )
        async throws -> [R]
    {
        var results: [R] = []
        for c in cases { results.append(try await work(c)) }
        return results
    }
}

/// Every case a job on the cluster, `jobs` at a time, each on its own client connection.
struct ClusterRunner: CaseRunner {
    let connection: ClientConnection

    func picture(_ prompt: String, seed: UInt64, _ parameters: EvalCommand.Parameters) async throws -> Data {
        let request = GenerationRequest(
            mode: .textToImage,
            prompt: prompt,
            seed: seed,
            guidance: parameters.cfg,
            steps: parameters.steps
        )
        let outcome = try await submit(JobSpec(request), picture: nil, timeout: parameters.timeout)
        for case .image(let png, _) in outcome.pieces { return Data(png) }
        throw ValidationError("the coordinator finished '\(prompt)' without an image")
    }

    func answer(_ question: String, picture: Data, _ parameters: EvalCommand.Parameters) async throws -> String {
        let spec = JobSpec(mode: .imageToText, prompt: question, maxTokens: 8, seed: 0)
        return try await submit(spec, picture: picture, timeout: parameters.timeout).text
    }

    func submit(_ spec: JobSpec, picture: Data?, timeout: Double) async throws -> JobOutcome {
        let stream = try connection.open().submit(
            spec,
            picture: picture.map(Array.init),
            acceptTimeout: .milliseconds(Int(timeout * 1000))
        )
        return try await stream.collect()
    }

    func run<C: Sendable, R: Sendable>(
        _ cases: [C],
        jobs: Int,
        _ work: @escaping @Sendable (C) async throws -> R
    )
        async throws -> [R]
    {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: cases.count)
            var next = 0
            while next < min(jobs, cases.count) {
                let (index, c) = (next, cases[next])
                group.addTask { (index, try await work(c)) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < cases.count {
                    let (index, c) = (next, cases[next])
                    group.addTask { (index, try await work(c)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }
}
