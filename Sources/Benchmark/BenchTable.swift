import Foundation
import Tensor

/// The bench run as JSON.
public struct BenchReport: Codable, Sendable {
    public var size: BenchModel.Size
    public var quick: Bool
    public var figures: [Figure]

    public init(size: BenchModel.Size, quick: Bool, figures: [Figure]) {
        self.size = size
        self.quick = quick
        self.figures = figures
    }
}

/// The bench run as a text table: section, figure, value and unit, and the ratio to the limit it is bound by.
public enum BenchTable {
    public static func render(_ figures: [Figure], size: BenchModel.Size?) -> String {
        let model =
            size.map {
                "model: \($0.layers) layers, hidden \($0.hidden), \($0.heads) heads, MLP \($0.intermediate), "
                    + "diffusion head \($0.headWidth), \($0.dtype) (random weights), "
            } ?? ""
        var lines = [model + "\(ComputeThreads.count) compute thread(s), kernels on \(KernelPath.current)", ""]
        var section = ""
        for figure in figures {
            if figure.section != section {
                section = figure.section
                lines.append("\(section)")
            }
            let value = String(format: "%10.2f %-8@", figure.value, figure.unit)
            let ratio = figure.ratio.map { String(format: "  %5.2f %@", $0, figure.against ?? "") } ?? ""
            lines.append("  " + figure.name.padding(toLength: 48, withPad: " ", startingAt: 0) + value + ratio)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
