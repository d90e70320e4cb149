import Foundation
import Generation
import Testing

@testable import Heads

@Suite struct SamplerTests {
    let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 3.0, 0.0]

    @Test func greedyPicksTheFirstLargestLogit() {
        #expect(Sampler.choose(logits, parameters: .greedy, uniform: 0.99) == 1)
    }

    @Test func topKOfOneAndATinyTopPBothReduceToGreedy() {
        for u in stride(from: 0.0, to: 1.0, by: 0.1) {
            #expect(Sampler.choose([1, 3, 2.5, -1], parameters: .init(temperature: 1, topK: 1), uniform: u) == 1)
            #expect(Sampler.choose([0, 5, 1], parameters: .init(temperature: 1, topP: 0.01), uniform: u) == 1)
        }
    }

    @Test func sampledFrequenciesFollowTheSoftmax() {
        let values: [Float] = [0, 1, 2, -0.5]
        let parameters = SamplingParameters(temperature: 0.7)
        var counts = [Int](repeating: 0, count: values.count)
        let draws = 40_000
        for n in 0..<draws {
            counts[
                Sampler.choose(
                    values,
                    parameters: parameters,
                    uniform: CounterRandom.uniform(seed: 5, stream: 1, counter: UInt64(n))
                )
            ] += 1
        }
        let exps = values.map { exp(Double($0) / 0.7) }
        for (count, e) in zip(counts, exps) {
            #expect(abs(Double(count) / Double(draws) - e / exps.reduce(0, +)) < 0.01)
        }
    }

    @Test func topKKeepsValuesTiedWithTheKthAsTransformersDoes() {
        // transformers removes scores < the k-th largest, so ties with the k-th survive.
        var seen = Set<Int>()
        for n in 0..<1000 {
            seen.insert(
                Sampler.choose(
                    logits,
                    parameters: .init(temperature: 1, topK: 1),
                    uniform: CounterRandom.uniform(seed: 3, stream: 0, counter: UInt64(n))
                )
            )
        }
        #expect(seen == [1, 4])
    }

    @Test func topKKeepsOnlyTheKLargest() {
        var seen = Set<Int>()
        for n in 0..<2000 {
            seen.insert(
                Sampler.choose(
                    [0, 4, 3, 2, 1],
                    parameters: .init(temperature: 5, topK: 2),
                    uniform: CounterRandom.uniform(seed: 1, stream: 0, counter: UInt64(n))
                )
            )
        }
        #expect(seen == [1, 2])
    }

    @Test func topPKeepsTheSmallestSetReachingP() {
        // Probabilities ≈ 0.64, 0.24, 0.09, 0.03: p = 0.8 keeps the first two.
        var seen = Set<Int>()
        for n in 0..<2000 {
            seen.insert(
                Sampler.choose(
                    [3, 2, 1, 0],
                    parameters: .init(temperature: 1, topP: 0.8),
                    uniform: CounterRandom.uniform(seed: 2, stream: 0, counter: UInt64(n))
                )
            )
        }
        #expect(seen == [0, 1])
    }

    @Test func counterRandomIsAPureFunctionOfItsKeyAndLiesInTheUnitInterval() {
        let a = CounterRandom.uniform(seed: 7, stream: 3, counter: 11)
        #expect(a == CounterRandom.uniform(seed: 7, stream: 3, counter: 11))
        #expect(a != CounterRandom.uniform(seed: 7, stream: 3, counter: 12))
        #expect(a != CounterRandom.uniform(seed: 8, stream: 3, counter: 11))
        let values = (0..<10_000).map { CounterRandom.uniform(seed: 1, stream: 0, counter: UInt64($0)) }
        #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(values.reduce(0, +) / 10_000 - 0.5) < 0.02)
    }
}

@Suite struct LogitMaskTests {
    @Test func textOnlyBansImageCodesBOIAndEOI() {
        var row = [Float](repeating: 1, count: 8800)
        row.withUnsafeMutableBufferPointer { LogitMask.textOnly(SpecialTokens()).apply(to: $0) }
        #expect(row[3] == 1 && row[4] == -.infinity && row[8195] == -.infinity)
        #expect(row[8196] == -.infinity && row[8197] == -.infinity && row[8198] == 1 && row[8710] == 1)
    }

    @Test func forcingLeavesOnlyThatToken() {
        var row: [Float] = [5, 1, 2, 3]
        row.withUnsafeMutableBufferPointer { LogitMask.forcing(2).apply(to: $0) }
        #expect(row == [-.infinity, -.infinity, 2, -.infinity])
        #expect(Sampler.choose(row, parameters: .init(temperature: 1), uniform: 0.5) == 2)
    }
}
