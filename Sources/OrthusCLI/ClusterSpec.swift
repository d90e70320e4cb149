import Foundation
import Model

/// A cluster spec (`cluster/*.json`): which processes `orthus up` starts, with their layer ranges, endpoints and BLAS
/// threads. Paths are relative to the directory `orthus up` runs in.
struct ClusterSpec: Codable {
    struct Coordinator: Codable {
        /// The client endpoint (submit, status).
        var listen: String
        /// The worker endpoint.
        var workers: String
    }

    struct Stage: Codable {
        /// `A..<B`.
        var layers: String
        /// Where the stage receives micro-batches.
        var listen: String
        var blasThreads: Int?
    }

    struct Head: Codable {
        var blasThreads: Int?
    }

    var model: String
    /// A CurveZMQ key folder (`orthus keys`); when set, every link is authenticated and encrypted.
    var curveDir: String?
    var coordinator: Coordinator
    var stages: [Stage]
    var lmHeads: [Head]
    var diffusionHeads: [Head]

    static func load(_ path: String) throws -> ClusterSpec {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let spec: ClusterSpec
        do {
            spec = try JSONDecoder().decode(ClusterSpec.self, from: data)
        } catch {
            throw ClientError("\(path) is not a valid cluster spec: \(error)")
        }
        try spec.validate(path)
        return spec
    }

    func validate(_ path: String) throws {
        guard !stages.isEmpty else { throw ClientError("\(path): a cluster needs at least one stage") }
        guard !lmHeads.isEmpty, !diffusionHeads.isEmpty else {
            throw ClientError("\(path): a cluster needs at least one lm head and one diffusion head")
        }
        var next = 0
        for stage in stages {
            guard let range = LayerRange.parse(stage.layers), range.lowerBound == next else {
                throw ClientError("\(path): stage layers '\(stage.layers)' must continue from layer \(next)")
            }
            next = range.upperBound
        }
        let threads = stages.map(\.blasThreads) + lmHeads.map(\.blasThreads) + diffusionHeads.map(\.blasThreads)
        if threads.contains(where: { ($0 ?? 1) < 1 }) { throw ClientError("\(path): blasThreads must be at least 1") }
    }
}
