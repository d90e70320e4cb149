import ArgumentParser
import ClusterClient
import ClusterProtocol
import Coordinator
import Foundation

/// `orthus status`: the coordinator's members, pipeline, jobs and queue.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the cluster's members (role, layers, host, state, load), pipeline, jobs and queue."
    )

    @OptionGroup var connection: ClientConnection

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(
        help: "Wait up to this many seconds for the cluster to be ready (a pipeline and both pools); exit 1 if not."
    )
    var wait: Double?

    @Option(help: "Seconds to wait for the coordinator's answer.")
    var timeout: Double = 10

    func run() async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int((wait ?? 0) * 1000))
        var report = try await connection.open().status(timeout: .milliseconds(Int(timeout * 1000)))
        while wait != nil, !report.ready, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            report = try await connection.open().status(timeout: .milliseconds(Int(timeout * 1000)))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            StandardStreams.out(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
        } else {
            StandardStreams.out(Self.render(report))
        }
        if wait != nil, !report.ready { throw ExitCode(1) }
    }

    static func render(_ report: StatusReport) -> String {
        var lines = [
            "cluster: \(report.ready ? "ready" : "not ready")"
                + (report.pipeline.isEmpty
                    ? " (no complete pipeline)"
                    : ", pipeline " + report.pipeline.map { "w\($0)" }.joined(separator: " -> ")),
            "",
            pad(["id", "role", "layers", "state", "load", "host", "key", "endpoint"]),
        ]
        for m in report.members {
            lines.append(
                pad([
                    "w\(m.id)", m.role, m.layers ?? "-", m.slow ? "\(m.state),slow" : m.state, "\(m.outstanding)",
                    m.host.isEmpty ? "-" : m.host,
                    m.key,
                    m.endpoint ?? "-",
                ])
            )
        }
        lines += [
            "",
            "jobs: \(report.jobs.count) active, \(report.queued) queued, \(report.completedJobs) done, \(report.failedJobs) failed, \(report.cancelledJobs) cancelled",
        ]
        if !report.jobs.isEmpty {
            lines.append(pad(["job", "mode", "phase", "tokens", "patches", "seconds"]))
            for j in report.jobs {
                lines.append(
                    pad(["\(j.id)", j.mode, j.phase, "\(j.tokens)", "\(j.patches)", String(format: "%.1f", j.seconds)])
                )
            }
        }
        lines.append(
            "head backlog: lm \(report.lmBacklog), diffusion \(report.diffusionBacklog); refused messages: "
                + "clients \(report.rejectedClientMessages), workers \(report.rejectedWorkerMessages)"
                + (report.droppedClientMessages + report.droppedWorkerMessages > 0
                    ? "; dropped in floods: clients \(report.droppedClientMessages), workers \(report.droppedWorkerMessages)"
                    : "")
        )
        for row in report.floodingClients { lines.append("  dropped from \(row.peer): \(row.dropped)") }
        let stages = report.members.filter { $0.kvBudget > 0 && $0.state != "down" }
        if !stages.isEmpty {
            lines.append("stage KV positions (held now / reserved by running jobs / free to reserve, of the budget):")
            for stage in stages {
                let free = stage.kvBudget - min(stage.kvBudget, stage.kvReserved)
                lines.append(
                    "  w\(stage.id) \(stage.kvPositions) / \(stage.kvReserved) / \(free) of \(stage.kvBudget)"
                )
            }
        }
        let refused = report.members.filter { $0.refusedInputs > 0 }
        if !refused.isEmpty {
            lines.append(
                "stage inputs refused: " + refused.map { "w\($0.id) \($0.refusedInputs)" }.joined(separator: ", ")
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func pad(_ cells: [String]) -> String {
        let widths = [5, 15, 8, 9, 5, 14, 28, 0]
        return zip(cells, widths).map { cell, width in
            cell.count >= width ? cell + " " : cell + String(repeating: " ", count: width - cell.count)
        }.joined().trimmingCharacters(in: .whitespaces)
    }
}
