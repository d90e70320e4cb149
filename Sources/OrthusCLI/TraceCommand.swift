import ArgumentParser
import ClusterClient
import Foundation
import Timeline

/// `orthus trace`: the pipeline's timeline over the next few seconds, from the spans workers report in heartbeats.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Record the pipeline's timeline: Chrome trace-event JSON (opens in Perfetto) and optionally SVG.",
        discussion: """
            Each worker times its own work (a stage's forward of each micro-batch, LM-head requests, DDIM steps, VQ \
            decodes) and sends the spans in its heartbeats; the coordinator keeps the recent ones. This records those \
            of the next --seconds, one lane per stage and worker, and prints each lane's busy share. A worker's spans \
            are on its own wall clock: lanes of different hosts line up as well as the hosts' clocks agree.
            """
    )

    @OptionGroup var connection: ClientConnection

    @Option(help: "Seconds to record.")
    var seconds: Double = 10

    @Option(help: "Write the Chrome trace-event JSON here.")
    var out = "trace.json"

    @Option(help: "Also draw the timeline as SVG here.")
    var svg: String?

    @Option(help: "Seconds to wait for each of the coordinator's answers.")
    var timeout: Double = 10

    func validate() throws {
        guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600]") }
        for (flag, path) in [("--out", out), ("--svg", svg)] {
            guard let path else { continue }
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError("\(flag) \(path): the folder \(parent) does not exist")
            }
        }
    }

    func run() async throws {
        let client = try connection.open()
        let wait = Duration.milliseconds(Int(timeout * 1000))
        let begin = try await client.trace(since: .max, timeout: wait)
        StandardStreams.err("recording \(seconds) s of the pipeline...\n")
        try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        let end = try await client.trace(since: .max, timeout: wait)
        // The work of the window's last second arrives with the next heartbeats (one a second).
        try await Task.sleep(for: .milliseconds(1500))
        let report = try await client.trace(since: begin.cursor, timeout: wait)
        let timeline = Timeline(report.window(through: end.cursor), baselines: begin.baselines)
        try timeline.chromeTrace().write(to: URL(fileURLWithPath: out))
        if let svg {
            try timeline.svg(title: "Pipeline timeline, \(String(format: "%g", seconds)) s").write(
                toFile: svg,
                atomically: true,
                encoding: .utf8
            )
        }
        StandardStreams.out(Self.summary(timeline))
        StandardStreams.out("wrote \(out)" + (svg.map { " and \($0)" } ?? "") + "\n")
        if !timeline.complete {
            StandardStreams.err("warning: the coordinator dropped some records of this window (it keeps the newest)\n")
        }
    }

    static func summary(_ timeline: Timeline) -> String {
        let window = Double(timeline.end - timeline.start) / 1_000_000
        var lines = [String(format: "%.2f s of spans, %d micro-batch round trips", window, timeline.trips.count)]
        for lane in timeline.lanes {
            lines.append(
                "  " + lane.name.padding(toLength: max(32, lane.name.count), withPad: " ", startingAt: 0)
                    + String(
                        format: " %6d spans  busy %9.1f ms (%4.1f%%)  reported %9.1f ms",
                        lane.spans.count,
                        Double(lane.spanTime) / 1000,
                        timeline.busyShare(lane) * 100,
                        Double(lane.reportedBusy) / 1000
                    )
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
