import ClusterProtocol
import Foundation

/// A timeline drawn as SVG: a row per lane with its spans as bars coloured by kind, the coordinator's micro-batch
/// round trips above them, a time axis, and each lane's busy share, so the pipeline's bubbles (the gaps in a stage's
/// row) can be seen at a glance.
extension Timeline {
    static let colours: [WorkSpan.Kind: String] = [
        .forward: "#4878a8", .tokens: "#e0a030", .patchStep: "#5aa55a", .decode: "#a05ab4", .encode: "#c05050",
    ]

    public func svg(width: Int = 1200, title: String = "Pipeline timeline") -> String {
        let (left, right, top, row) = (230.0, 20.0, 64.0, 26.0)
        let plot = Double(width) - left - right
        let span = Double(max(1, end - start))
        func x(_ t: UInt64) -> Double { left + Double(t - min(t, start)) / span * plot }
        func format(_ value: Double) -> String { String(format: "%.1f", value) }
        let tripRows = 3
        let height = Int(top + row * Double(lanes.count + 1) + 60)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" \
            font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="#ffffff"/>
            <text x="10" y="22" font-size="15" font-weight="bold">\(Self.escape(title))</text>

            """
        // Legend.
        var legendX = left
        for kind in WorkSpan.Kind.allCases {
            svg +=
                "<rect x=\"\(format(legendX))\" y=\"34\" width=\"12\" height=\"12\" fill=\"\(Self.colours[kind]!)\"/>"
            svg += "<text x=\"\(format(legendX + 16))\" y=\"44\">\(kind)</text>\n"
            legendX += 110
        }
        // The coordinator's round trips, spread over a few thin rows so overlapping ones stay visible.
        svg += "<text x=\"10\" y=\"\(format(top + 16))\">coordinator: micro-batch round trips</text>\n"
        for (index, trip) in trips.enumerated() {
            let y = top + 4 + Double(index % tripRows) * 6
            let w = max(0.5, x(trip.returned) - x(trip.sent))
            svg += "<rect x=\"\(format(x(trip.sent)))\" y=\"\(format(y))\" width=\"\(format(w))\" height=\"4\" "
            svg += "fill=\"#888888\"/>\n"
        }
        for (index, lane) in lanes.enumerated() {
            let y = top + row * Double(index + 1)
            let share = Int((busyShare(lane) * 100).rounded())
            svg +=
                "<rect x=\"\(format(left))\" y=\"\(format(y + 2))\" width=\"\(format(plot))\" height=\"\(format(row - 4))\" "
            svg += "fill=\"#f1f1ee\"/>\n"
            svg += "<text x=\"10\" y=\"\(format(y + 17))\">\(Self.escape(lane.name)) · busy \(share)%</text>\n"
            // Spans of one kind closer than half a pixel are one bar: the picture is the same, the file far smaller.
            var bars: [(kind: WorkSpan.Kind, from: Double, to: Double)] = []
            for item in lane.spans {
                let (from, to) = (x(item.start), max(x(item.start) + 0.5, x(item.start + item.duration)))
                if let last = bars.last, last.kind == item.kind, from - last.to < 0.5 {
                    bars[bars.count - 1].to = max(last.to, to)
                } else {
                    bars.append((item.kind, from, to))
                }
            }
            for bar in bars {
                svg += "<rect x=\"\(format(bar.from))\" y=\"\(format(y + 4))\" width=\"\(format(bar.to - bar.from))\" "
                svg += "height=\"\(format(row - 8))\" fill=\"\(Self.colours[bar.kind]!)\"/>\n"
            }
        }
        // Time axis: about ten ticks at round milliseconds.
        let axis = top + row * Double(lanes.count + 1) + 10
        svg +=
            "<line x1=\"\(format(left))\" y1=\"\(format(axis))\" x2=\"\(format(left + plot))\" y2=\"\(format(axis))\" "
        svg += "stroke=\"#444\"/>\n"
        let milliseconds = span / 1000
        let step = Self.roundStep(milliseconds / 10)
        var tick = 0.0
        while tick <= milliseconds {
            let tx = left + tick / milliseconds * plot
            svg += "<line x1=\"\(format(tx))\" y1=\"\(format(axis))\" x2=\"\(format(tx))\" y2=\"\(format(axis + 5))\" "
            svg += "stroke=\"#444\"/>"
            svg +=
                "<text x=\"\(format(tx))\" y=\"\(format(axis + 18))\" text-anchor=\"middle\">\(Self.label(tick))</text>\n"
            tick += step
        }
        return svg + "</svg>\n"
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func roundStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let power = pow(10, floor(log10(raw)))
        for factor in [1.0, 2, 5, 10] where factor * power >= raw { return factor * power }
        return 10 * power
    }

    static func label(_ milliseconds: Double) -> String {
        milliseconds >= 1000
            ? "\(String(format: "%g", milliseconds / 1000)) s" : "\(String(format: "%g", milliseconds)) ms"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
