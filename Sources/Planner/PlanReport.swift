import Foundation

/// A plan as people read it, and as `orthus up` runs it.
public enum PlanReport {
    public static func text(_ plan: Plan, even: [Plan.Stage]?) -> String {
        func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }
        func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
        var lines = ["stages (\(plan.depth) micro-batches in flight):"]
        for (index, stage) in plan.stages.enumerated() {
            let mark = index == plan.bottleneck ? "  <- slowest" : ""
            lines.append(
                "  stage \(index)  layers \(stage.layers.lowerBound)..<\(stage.layers.upperBound)  on \(stage.host) "
                    + "(\(stage.address))  \(ms(stage.seconds)) per micro-batch  \(gib(stage.bytes))\(mark)"
            )
        }
        lines.append("workers:")
        for worker in plan.workers {
            lines.append("  \(worker.role) on \(worker.host) (\(worker.address))  \(gib(worker.bytes))")
        }
        if let even, let slowest = even.map(\.seconds).max() {
            lines.append(
                "an even split over the same hosts: slowest stage \(ms(slowest)); this plan's "
                    + "\(ms(plan.stages[plan.bottleneck].seconds))"
            )
        }
        lines += [
            "predicted: micro-batch round trip \(ms(plan.roundTripSeconds)), "
                + String(format: "%.1f", plan.rowsPerSecond) + " pipeline rows/s, limited by \(plan.limitedBy)",
            "  diffusion pool " + String(format: "%.1f", plan.diffusionPatchesPerSecond) + " patches/s against "
                + String(format: "%.1f", plan.patchDemandPerSecond) + " asked",
            "  for the mix: " + String(format: "%.1f", plan.tokensPerSecond) + " tokens/s and "
                + String(format: "%.2f", plan.imagesPerMinute) + " images/min",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Values for the Kubernetes files (cluster/k8s): the `stage-layers` ConfigMap's file (one range per line, in
    /// pipeline order), and a strategic-merge patch setting the stage StatefulSet's replicas, KV budget and memory
    /// (its pods are alike: the largest stage's), and the pools' replicas and memory.
    public static func kubernetes(_ plan: Plan, costs: ModelCosts, sequences: Int) -> (layers: String, patch: String) {
        let layers = plan.stages.map { "\($0.layers.lowerBound)..<\($0.layers.upperBound)\n" }.joined()
        let widest = plan.stages.map(\.layers.count).max() ?? 0
        let kvMB = (sequences * costs.contextLength * costs.kvBytesPerPositionPerLayer * widest + (1 << 20) - 1) >> 20
        func mebibytes(_ bytes: Int) -> String { "\((bytes + (1 << 20) - 1) >> 20)Mi" }
        let stageBytes = plan.stages.map(\.bytes).max() ?? 0
        let diffusion = plan.workers.filter { $0.role == "diffusion-head" }
        let lmBytes = plan.workers.first { $0.role == "lm-head" }?.bytes ?? 0
        let patch = """
            # Written by orthus plan: \(plan.stages.count) stages, \(diffusion.count) diffusion workers, KV room for \
            \(sequences) sequences.
            apiVersion: apps/v1
            kind: StatefulSet
            metadata:
              name: orthus-stage
            spec:
              replicas: \(plan.stages.count)
              template:
                spec:
                  containers:
                    - name: stage
                      env:
                        - { name: KV_MEMORY_MB, value: "\(kvMB)" }
                      resources:
                        requests: { memory: \(mebibytes(stageBytes)) }
                        limits: { memory: \(mebibytes(stageBytes + stageBytes / 4)) }
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: orthus-lm-head
            spec:
              template:
                spec:
                  containers:
                    - name: lm-head
                      resources:
                        requests: { memory: \(mebibytes(lmBytes)) }
                        limits: { memory: \(mebibytes(lmBytes + lmBytes / 4)) }
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: orthus-diffusion-head
            spec:
              replicas: \(diffusion.count)
              template:
                spec:
                  containers:
                    - name: diffusion-head
                      resources:
                        requests: { memory: \(mebibytes(diffusion.first?.bytes ?? 0)) }
                        limits: { memory: \(mebibytes((diffusion.first?.bytes ?? 0) * 5 / 4)) }

            """
        return (layers, patch)
    }

    /// A spec for `orthus up`: every process on this machine, stages on ports 5601 and up.
    public static func spec(_ plan: Plan, model: String) throws -> Data {
        struct Spec: Encodable {
            struct Coordinator: Encodable {
                var listen = "tcp://127.0.0.1:5555"
                var workers = "tcp://127.0.0.1:5556"
                var depth: Int
            }
            struct Stage: Encodable {
                var layers: String
                var listen: String
                var blasThreads = 1
            }
            struct Head: Encodable { var blasThreads = 1 }
            var model: String
            var coordinator: Coordinator
            var stages: [Stage]
            var lmHeads: [Head]
            var diffusionHeads: [Head]
        }
        let spec = Spec(
            model: model,
            coordinator: .init(depth: plan.depth),
            stages: plan.stages.enumerated().map {
                Spec.Stage(
                    layers: "\($1.layers.lowerBound)..<\($1.layers.upperBound)",
                    listen: "tcp://127.0.0.1:\(5601 + $0)"
                )
            },
            lmHeads: plan.workers.filter { $0.role == "lm-head" }.map { _ in Spec.Head() },
            diffusionHeads: plan.workers.filter { $0.role == "diffusion-head" }.map { _ in Spec.Head() }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(spec)
    }
}
