import Foundation
import Generation
import Runtime

/// A cluster spec (`cluster/*.json`): which processes `orthus up` starts, with their layer ranges, endpoints and BLAS
/// threads. Paths are relative to the directory `orthus up` runs in.
public struct ClusterSpec: Codable, Sendable {
    public struct Coordinator: Codable, Sendable {
        /// The client endpoint (submit, status).
        public var listen: String
        /// The worker endpoint.
        public var workers: String
        /// `--metrics-listen` (HOST:PORT), when set.
        public var metricsListen: String?
        /// `--depth`: micro-batches in flight (default: one per stage); `orthus plan` chooses it.
        public var depth: Int?
    }

    public struct Stage: Codable, Sendable {
        /// `A..<B`.
        public var layers: String
        /// Where the stage receives micro-batches.
        public var listen: String
        public var blasThreads: Int?
        public var metricsListen: String?
    }

    public struct Head: Codable, Sendable {
        public var blasThreads: Int?
        public var metricsListen: String?
    }

    /// `orthus serve` in front of the coordinator.
    public struct Gateway: Codable, Sendable {
        /// HOST:PORT.
        public var listen: String
        /// A file of API keys, one per line.
        public var apiKeys: String?
        public var servedModelName: String?
    }

    public var model: String
    /// A CurveZMQ key folder (`orthus keys`); when set, every link is authenticated and encrypted.
    public var curveDir: String?
    public var coordinator: Coordinator
    public var stages: [Stage]
    public var lmHeads: [Head]
    public var diffusionHeads: [Head]
    /// An HTTP gateway to start with the cluster.
    public var gateway: Gateway?

    public static func load(_ path: String) throws -> ClusterSpec {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LaunchError("cannot read the cluster spec " + readableFileError(error, path: path))
        }
        let spec: ClusterSpec
        do {
            spec = try JSONDecoder().decode(ClusterSpec.self, from: data)
        } catch let error as DecodingError {
            throw LaunchError("\(path) is not a valid cluster spec: \(error.readable)")
        }
        try spec.validate(path)
        return spec
    }

    public func validate(_ path: String) throws {
        guard !stages.isEmpty else { throw LaunchError("\(path): a cluster needs at least one stage") }
        guard !lmHeads.isEmpty, !diffusionHeads.isEmpty else {
            throw LaunchError("\(path): a cluster needs at least one lm head and one diffusion head")
        }
        var next = 0
        for stage in stages {
            guard let range = LayerRange.parse(stage.layers), range.lowerBound == next else {
                throw LaunchError("\(path): stage layers '\(stage.layers)' must continue from layer \(next)")
            }
            next = range.upperBound
        }
        let threads = stages.map(\.blasThreads) + lmHeads.map(\.blasThreads) + diffusionHeads.map(\.blasThreads)
        if threads.contains(where: { ($0 ?? 1) < 1 }) { throw LaunchError("\(path): blasThreads must be at least 1") }
    }
}
