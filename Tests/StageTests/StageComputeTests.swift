import Checkpoint
import Generation
import Heads
import Model
import Tensor
import TestSupport
import Testing

@testable import Stage

@Suite struct StageComputeTests {
    static let splits: [[Range<Int>]] = [[0..<4], [0..<2, 2..<4], [0..<1, 1..<3, 3..<4]]

    static func chain(_ split: [Range<Int>]) throws -> [StageCompute] {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        return try split.map { try StageCompute(directory: directory, layers: $0) }
    }

    /// Runs one micro-batch through every stage in order, as the pipeline does.
    static func run(_ stages: inout [StageCompute], _ slices: [SequenceSlice], _ inputs: [StageInput]) throws -> Matrix
    {
        var output = try stages[0].run(slices, input: .inputs(inputs))
        for i in 1..<stages.count { output = try stages[i].run(slices, input: .hidden(output)) }
        return output
    }

    @Test func oneTwoAndThreeStagesGiveBitIdenticalRowsForAMixedSchedule() throws {
        let a = try PromptGolden.ids("p64")
        let b = try PromptGolden.ids("p7")
        // Prefill chunks of two sequences, then mixed decode steps and a new sequence joining.
        let schedule: [([SequenceSlice], [Int])] = [
            (
                [SequenceSlice(sequenceID: 1, start: 0, count: 20), SequenceSlice(sequenceID: 2, start: 0, count: 7)],
                Array(a[0..<20]) + b
            ),
            ([SequenceSlice(sequenceID: 1, start: 20, count: 44)], Array(a[20..<64])),
            (
                [
                    SequenceSlice(sequenceID: 2, start: 7, count: 1), SequenceSlice(sequenceID: 1, start: 64, count: 1),
                    SequenceSlice(sequenceID: 3, start: 0, count: 3),
                ], [9000, 9001, 8800, 8801, 8802]
            ),
        ]
        var results: [[Matrix]] = []
        for split in Self.splits {
            var stages = try Self.chain(split)
            results.append(try schedule.map { try Self.run(&stages, $0.0, $0.1.map(StageInput.token)) })
        }
        #expect(results[1] == results[0])
        #expect(results[2] == results[0])
    }

    /// transformers' greedy `generate` (image codes masked) is the reference: three stages must reproduce it.
    @Test func greedyTextThroughThreeStagesEqualsTransformersGenerate() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        let golden = try PromptGolden.all("tiny-orthus")["p7"]!
        let prompt = golden.ids
        let mask = LogitMask(banned: [SpecialTokens().imageCodes])

        var stages = try Self.chain(Self.splits[2])
        let head = try LMHead(directory: directory)
        var hidden = StageCompute.lastRows(
            try Self.run(
                &stages,
                [SequenceSlice(sequenceID: 7, start: 0, count: prompt.count)],
                prompt.map(StageInput.token)
            ),
            slices: [SequenceSlice(sequenceID: 7, start: 0, count: prompt.count)]
        )
        var tokens: [Int] = []
        while tokens.count < 16 {
            var logits = head.logits(hidden).storage
            logits.withUnsafeMutableBufferPointer { mask.apply(to: $0) }
            tokens.append(Sampler.argmax(logits))
            hidden = try Self.run(
                &stages,
                [SequenceSlice(sequenceID: 7, start: prompt.count + tokens.count - 1, count: 1)],
                [.token(tokens.last!)]
            )
        }
        #expect(tokens == Array(golden.greedy32.prefix(16)))
    }

    @Test func badMicroBatchesAreRefusedByNameAndOtherSequencesCarryOn() throws {
        var stages = try Self.chain(Self.splits[1])
        _ = try Self.run(
            &stages,
            [SequenceSlice(sequenceID: 1, start: 0, count: 3)],
            [.token(0), .token(5), .token(6)]
        )
        #expect(throws: StageError.positionMismatch(sequence: 1, cached: 3, offered: 2)) {
            _ = try stages[0].run([SequenceSlice(sequenceID: 1, start: 2, count: 1)], input: .inputs([.token(7)]))
        }
        #expect(throws: StageError.unknownSequence(sequence: 9, offered: 4)) {
            _ = try stages[0].run([SequenceSlice(sequenceID: 9, start: 4, count: 1)], input: .inputs([.token(7)]))
        }
        #expect(throws: StageError.duplicateSequence(1)) {
            _ = try stages[0].run(
                [SequenceSlice(sequenceID: 1, start: 3, count: 1), SequenceSlice(sequenceID: 1, start: 4, count: 1)],
                input: .inputs([.token(7), .token(8)])
            )
        }
        #expect(throws: StageError.rowCount(slices: 2, rows: 1)) {
            _ = try stages[0].run([SequenceSlice(sequenceID: 1, start: 3, count: 2)], input: .inputs([.token(7)]))
        }
        #expect(throws: StageError.wrongInputKind(firstStage: false)) {
            _ = try stages[1].run([SequenceSlice(sequenceID: 1, start: 3, count: 1)], input: .inputs([.token(7)]))
        }
        #expect(throws: StageError.hiddenWidth(found: 5, expected: 32)) {
            _ = try stages[1].run(
                [SequenceSlice(sequenceID: 1, start: 3, count: 1)],
                input: .hidden(Matrix(rows: 1, columns: 5))
            )
        }
        // Nothing above touched sequence 1: it continues at position 3.
        #expect(stages[0].position(of: 1) == 3 && stages[1].position(of: 1) == 3)
        _ = try Self.run(&stages, [SequenceSlice(sequenceID: 1, start: 3, count: 1)], [.token(7)])
        stages[0].release([1])
        #expect(stages[0].sequenceCount == 0 && stages[1].position(of: 1) == 4)
    }

    @Test func aStageLoadsOnlyItsOwnLayers() throws {
        let directory = try ModelDirectory(path: Fixtures.tinyOrthus)
        _ = try StageCompute(directory: directory, layers: 1..<3)
        #expect(directory.namesLoaded.allSatisfy { $0.hasPrefix("model.layers.1.") || $0.hasPrefix("model.layers.2.") })
    }
}

extension PromptGolden {
    static func ids(_ prompt: String) throws -> [Int] { try all("tiny-orthus")[prompt]!.ids }
}
