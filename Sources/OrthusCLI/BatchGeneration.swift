import ArgumentParser
import Engine
import Foundation
import Generation

/// `generate --prompts FILE`: every line's request runs in one engine at once. A line is a JSON object whose keys are
/// `submit`'s long option names (`max_tokens` or `max-tokens`); it is read by the same parser as the command line,
/// so a line accepts and refuses exactly what the flags do. Each line's outcome is printed as one JSON line, in the
/// file's order: its text (text modes), the files it wrote, or its error.
struct BatchGeneration {
    let file: String
    let engine: LocalEngine
    let maxImagePixels: Int

    struct Outcome: Encodable {
        var line: Int
        var text: String?
        var tokens: Int?
        var finish: String?
        var files: [String]?
        var error: String?
    }

    func run() throws {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        var requests: [(line: Int, options: RequestOptions)] = []
        var outcomes: [Int: Outcome] = [:]
        for (index, text) in lines.enumerated() where !text.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                requests.append((index + 1, try Self.options(String(text))))
            } catch {
                outcomes[index + 1] = Outcome(line: index + 1, error: Self.message(error))
            }
        }
        var jobs: [LocalEngine.Job] = []
        var planned: [(line: Int, options: RequestOptions)] = []
        for request in requests {
            do {
                jobs.append(try GenerateCommand.job(request.options, engine: engine, maxImagePixels: maxImagePixels))
                planned.append(request)
            } catch {
                outcomes[request.line] = Outcome(line: request.line, error: Self.message(error))
            }
        }
        let results = try engine.run(jobs)
        for (request, result) in zip(planned, results) {
            var outcome = Outcome(line: request.line)
            do {
                let answer = try result.get()
                outcome.finish = "\(answer.reason)"
                if request.options.mode == .text || request.options.mode == .imageToText {
                    outcome.text = try engine.tokenizer.decode(answer.tokens.filter { !Self.isStop($0, engine) })
                    outcome.tokens = answer.tokens.count
                }
                try GenerateCommand.writeOutputs(answer, of: request.options, engine: engine, echo: false)
                let files = [request.options.imageOut, request.options.outDir, request.options.latentsOut].compactMap {
                    $0
                }
                outcome.files = files.isEmpty ? nil : files
            } catch {
                outcome.error = Self.message(error)
            }
            outcomes[request.line] = outcome
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for line in outcomes.keys.sorted() {
            StandardStreams.out(String(decoding: try encoder.encode(outcomes[line]!), as: UTF8.self) + "\n")
        }
        let failed = outcomes.values.filter { $0.error != nil }.count
        if failed > 0 { throw ValidationError("\(failed) of \(outcomes.count) request(s) in \(file) failed") }
    }

    static func isStop(_ token: Int, _ engine: LocalEngine) -> Bool {
        token == engine.planner.special.sep || token == engine.planner.special.eos
    }

    /// A JSON value a line may give an option.
    enum Value: Decodable {
        case flag(Bool)
        case text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            // Each kind is tried in turn; the last one's error names a value that is none of them.
            if let flag = try? container.decode(Bool.self) {
                self = .flag(flag)
            } else if let integer = try? container.decode(Int64.self) {
                self = .text(String(integer))
            } else if let number = try? container.decode(Double.self) {
                self = .text(String(number))
            } else {
                self = .text(try container.decode(String.self))
            }
        }
    }

    /// A line's request options, parsed as `submit`'s flags.
    static func options(_ line: String) throws -> RequestOptions {
        let object: [String: Value]
        do {
            object = try JSONDecoder().decode([String: Value].self, from: Data(line.utf8))
        } catch {
            throw ValidationError("a line must be one JSON object of strings, numbers and booleans")
        }
        var arguments: [String] = []
        for key in object.keys.sorted() {
            let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
            switch object[key]! {
            case .flag(let on): if on { arguments.append(flag) }
            case .text(let value): arguments += [flag, value]
            }
        }
        let options = try RequestOptions.parse(arguments)
        _ = try options.requiredPrompt()
        return options
    }

    static func message(_ error: any Error) -> String { RequestOptions.message(for: error) }
}
