/// A placement of the cluster's processes on hosts, with what it predicts.
public struct Plan: Codable, Sendable, Equatable {
    public struct Stage: Codable, Sendable, Equatable {
        public var host: String
        public var address: String
        public var layers: Range<Int>
        /// Predicted time of one decode micro-batch (the goal's rows) through this stage.
        public var seconds: Double
        /// Memory it needs: weights, KV room for the goal's sequences, the process.
        public var bytes: Int
    }

    public struct Worker: Codable, Sendable, Equatable {
        /// lm-head or diffusion-head.
        public var role: String
        public var host: String
        public var address: String
        public var bytes: Int
    }

    public var stages: [Stage]
    public var workers: [Worker]
    /// Micro-batches in flight.
    public var depth: Int
    /// The slowest stage (its index) and the time of one micro-batch there.
    public var bottleneck: Int
    /// A decode micro-batch's trip through every stage and the LM head.
    public var roundTripSeconds: Double
    /// Pipeline rows per second: decode tokens for text, two rows per image patch (a CFG pair).
    public var rowsPerSecond: Double
    /// Patches per second the diffusion workers can sample, and the mix's demand.
    public var diffusionPatchesPerSecond: Double
    public var patchDemandPerSecond: Double
    /// For the goal's mix (text jobs of 256 tokens, image jobs of one picture): tokens per second and pictures per
    /// minute.
    public var tokensPerSecond: Double
    public var imagesPerMinute: Double
    /// What limits throughput: "stage N" or "diffusion pool".
    public var limitedBy: String

    /// Tokens of a text job in the mix.
    public static let textJobTokens = 256
}

extension Planner {
    /// The whole plan: the split, then the head workers on the memory and cores left, the micro-batches in flight
    /// (the goal's, else the simulation's fastest), then the predictions.
    public func plan() throws(PlanError) -> Plan {
        let first = try plan(depth: goal.depth > 0 ? goal.depth : nil)
        guard goal.depth == 0 else { return first }
        let depth = bestDepth(for: first, sequences: goal.sequences)
        return depth == first.depth ? first : try plan(depth: depth)
    }

    /// The plan with `depth` micro-batches in flight (nil: one per stage).
    func plan(depth chosen: Int?) throws(PlanError) -> Plan {
        let stages = try split()
        var free = Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, Self.usable($0)) })
        var cores = Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, $0.cores) })
        for stage in stages {
            free[stage.host, default: 0] -= stage.bytes
            cores[stage.host, default: 0] -= 1
        }
        func place(_ role: String, bytes: Int) -> Plan.Worker? {
            // The host with the most cores to spare, then the most memory.
            let candidates = hosts.filter { free[$0.name, default: 0] >= bytes }
            guard
                let host = candidates.max(by: {
                    (cores[$0.name, default: 0], free[$0.name, default: 0])
                        < (cores[$1.name, default: 0], free[$1.name, default: 0])
                })
            else { return nil }
            free[host.name, default: 0] -= bytes
            cores[host.name, default: 0] -= 1
            return Plan.Worker(role: role, host: host.name, address: host.address, bytes: bytes)
        }
        let overhead = ModelCosts.processOverhead
        guard let lmHead = place("lm-head", bytes: costs.lmHeadBytes + overhead) else {
            throw .noRoomForHeads(
                "no host has \(Self.gigabytes(costs.lmHeadBytes + overhead)) left for the LM-head worker after the stages"
            )
        }
        let lmHost = hosts.first { $0.name == lmHead.host }!

        let depth = chosen ?? stages.count
        let rows = Double(goal.rows)
        let slowest = stages.indices.max { stages[$0].seconds < stages[$1].seconds }!
        let roundTrip = stages.reduce(0) { $0 + $1.seconds } + rows * lmHost.profile.lmHeadSecondsPerRow
        // Each of `depth` micro-batches makes a round trip; the slowest stage passes one at a time.
        let rowsPerSecond = min(Double(depth) * rows / roundTrip, rows / stages[slowest].seconds)

        // The mix: rows per job, jobs per second the pipeline allows, the patches they ask of the diffusion pool.
        let share = min(1, max(0, goal.imageShare))
        let patches = Double(costs.patchesPerImage)
        let rowsPerJob = share * 2 * patches + (1 - share) * Double(Plan.textJobTokens)
        let demand = rowsPerSecond / rowsPerJob * share * patches
        var workers = [lmHead]
        var capacity = 0.0
        let bytes = costs.diffusionWorkerBytes + overhead
        // Diffusion workers until they keep up with the pipeline (at least one; each needs a core and its memory).
        repeat {
            guard cores.values.contains(where: { $0 > 0 }) || workers.count == 1,
                let worker = place("diffusion-head", bytes: bytes)
            else { break }
            workers.append(worker)
            let host = hosts.first { $0.name == worker.host }!
            capacity += 1 / (Double(goal.steps) * 2 * host.profile.diffusionSecondsPerRowStep)
        } while capacity < demand && workers.count < 64
        guard workers.count > 1 else {
            throw .noRoomForHeads("no host has \(Self.gigabytes(bytes)) left for a diffusion worker after the stages")
        }
        // Throughput is the pipeline's, unless the diffusion pool cannot keep up with its share.
        let scale = demand > capacity && demand > 0 ? capacity / demand : 1
        let jobsPerSecond = rowsPerSecond / rowsPerJob * scale
        return Plan(
            stages: stages,
            workers: workers,
            depth: depth,
            bottleneck: slowest,
            roundTripSeconds: roundTrip,
            rowsPerSecond: rowsPerSecond * scale,
            diffusionPatchesPerSecond: capacity,
            patchDemandPerSecond: demand,
            tokensPerSecond: jobsPerSecond * (1 - share) * Double(Plan.textJobTokens),
            imagesPerMinute: jobsPerSecond * share * 60,
            limitedBy: scale < 1 ? "diffusion pool" : "stage \(slowest)"
        )
    }

    /// The same layers split evenly over the same hosts in the given order (a baseline a plan should not lose to);
    /// nil when that does not fit.
    public func evenSplit() -> [Plan.Stage]? {
        let count = min(hosts.count, costs.layerCount)
        var stages: [Plan.Stage] = []
        var start = 0
        for index in 0..<count {
            let end = start + (costs.layerCount - start) / (count - index)
            let even = stage(start..<end, on: hosts[index])
            guard even.bytes <= Self.usable(hosts[index]) else { return nil }
            stages.append(even)
            start = end
        }
        return stages
    }
}
