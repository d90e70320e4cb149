import Foundation
import Runtime

/// One measured figure of the bench table.
public struct Figure: Codable, Sendable, Equatable {
    public var section: String
    public var name: String
    public var value: Double
    public var unit: String
    /// The figure divided by the limit it is compared with, when there is one.
    public var ratio: Double?
    /// What `ratio` compares with (for example "read bandwidth").
    public var against: String?

    public init(
        section: String,
        name: String,
        value: Double,
        unit: String,
        ratio: Double? = nil,
        against: String? = nil
    ) {
        self.section = section
        self.name = name
        self.value = value
        self.unit = unit
        self.ratio = ratio
        self.against = against
    }
}

/// Timing on a noisy shared machine: the best of several runs, each long enough to dwarf the clock's resolution.
enum Stopwatch {
    /// The shortest time of `repeats` runs of `body`, in seconds.
    static func best(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = ContinuousClock.now
            try body()
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        return best
    }
}
