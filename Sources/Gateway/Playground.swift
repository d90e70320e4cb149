import ClusterProtocol
import Foundation
import Hummingbird
import NIOCore

/// What the playground shows of the cluster: its pipeline and pools and its job counts, without keys, hosts or
/// endpoints (whoever may run jobs may see how busy the cluster is, not where its workers are).
struct ClusterSummary: Encodable, Sendable, Equatable {
    struct Stage: Encodable, Sendable, Equatable {
        var layers: String
        var state: String
        var busySeconds: Double
        var kvPositions: UInt64
        var kvBudget: UInt64
        var slow: Bool
    }
    var ready: Bool
    var stages: [Stage]
    var lmHeads: Int
    var diffusionWorkers: Int
    var running: Int
    var queued: Int
    var completed: Int
    var failed: Int

    init(_ report: StatusReport) {
        ready = report.ready
        let pipeline = report.pipeline.compactMap { id in report.members.first { $0.id == id } }
        let stages = pipeline.isEmpty ? report.members.filter { $0.role == "stage" } : pipeline
        self.stages = stages.map {
            Stage(
                layers: $0.layers ?? "",
                state: $0.state,
                busySeconds: $0.busySeconds,
                kvPositions: $0.kvPositions,
                kvBudget: $0.kvBudget,
                slow: $0.slow
            )
        }
        let alive = report.members.filter { $0.state == "alive" }
        lmHeads = alive.filter { $0.role == "lm-head" }.count
        diffusionWorkers = alive.filter { $0.role == "diffusion-head" }.count
        running = report.jobs.count
        queued = report.queued
        completed = report.completedJobs
        failed = report.failedJobs
    }
}

extension GatewayServer {
    /// `GET /`: the playground page, with the model's name and image geometry filled in; `GET /v1/cluster`: the
    /// summary it polls.
    func addPlaygroundRoutes(to router: Router<GatewayContext>) throws {
        let page = try PlaygroundPage.html(model: model)
        router.get("/") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        router.get("/v1/cluster") { _, _ in
            await respond { json(ClusterSummary(try await client.status(timeout: .seconds(3)))) }
        }
    }
}
