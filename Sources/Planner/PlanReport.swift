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

    /// A spec for `orthus up`: every process on this machine, stages on ports 5601 and up.
    public static func spec(_ plan: Plan, model: String) throws -> Data {
        struct Spec: Encodable {
            struct Coordinator: Encodable {
                var listen = "tcp://127.0.0.1:5555"
                var workers = "tcp://127.0.0.1:5556"
            }
            struct Stage: Encodable {
                var layers: String
                var listen: String
                var blasThreads = 1
            }
            struct Head: Encodable { var blasThreads = 1 }
            var model: String
            var coordinator = Coordinator()
            var stages: [Stage]
            var lmHeads: [Head]
            var diffusionHeads: [Head]
        }
        let spec = Spec(
            model: model,
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
