/// Chooses where a model's stages and head workers run on a set of hosts: the number of stages, each stage's layer
/// range and host, so that the slowest stage is as fast as it can be and every process fits its host's memory with
/// KV room for the stated sequences at the model's full context; then the LM-head worker and as many diffusion
/// workers as the stated mix needs on the memory left. Pure: hosts, profiles and costs in, a plan out.
public struct Planner: Sendable {
    public struct Host: Codable, Sendable, Equatable {
        public var name: String
        public var address: String
        public var memoryBytes: Int
        public var cores: Int
        public var profile: HostProfile

        public init(name: String, address: String, memoryBytes: Int, cores: Int, profile: HostProfile) {
            self.name = name
            self.address = address
            self.memoryBytes = memoryBytes
            self.cores = cores
            self.profile = profile
        }
    }

    /// What the cluster is planned for.
    public struct Goal: Sendable, Equatable {
        /// Sequences every stage keeps KV room for, at the model's full context.
        public var sequences: Int
        /// Rows per decode micro-batch the stage times are predicted at.
        public var rows: Int
        /// Micro-batches in flight (the coordinator's `--depth`; 0: one per stage).
        public var depth: Int
        /// The share of jobs that draw a picture (the rest are text), and the DDIM steps per patch.
        public var imageShare: Double
        public var steps: Int

        public init(sequences: Int = 8, rows: Int = 8, depth: Int = 0, imageShare: Double = 0.5, steps: Int = 100) {
            self.sequences = sequences
            self.rows = rows
            self.depth = depth
            self.imageShare = imageShare
            self.steps = steps
        }
    }

    public enum PlanError: Error, Equatable, CustomStringConvertible {
        case noHosts
        case tooManyHosts(Int)
        /// No split fits: the host that comes closest, and how many bytes it lacks for its share.
        case doesNotFit(host: String, lacking: Int, layers: Int)
        case noRoomForHeads(String)

        public var description: String {
            switch self {
            case .noHosts: "no hosts to plan for"
            case .tooManyHosts(let count): "\(count) hosts: the planner searches every order of up to 12"
            case .doesNotFit(let host, let lacking, let layers):
                "the model does not fit these hosts: even the best split leaves \(host) "
                    + "\(Planner.gigabytes(lacking)) short for its layers (\(layers) of them) and their KV caches; "
                    + "add memory or hosts, or plan for fewer sequences"
            case .noRoomForHeads(let detail): detail
            }
        }
    }

    public let hosts: [Host]
    public let costs: ModelCosts
    public let goal: Goal
    /// Layer bytes up to each layer, for a range's bytes in O(1).
    private let prefix: [Int]

    public init(hosts: [Host], costs: ModelCosts, goal: Goal) {
        self.hosts = hosts
        self.costs = costs
        self.goal = goal
        var sums = [0]
        for bytes in costs.layerBytes { sums.append(sums.last! + bytes) }
        prefix = sums
    }

    /// A stage's memory: its layers, what the first and last stages hold besides, KV room and the process.
    func stageBytes(_ layers: Range<Int>) -> Int {
        var bytes = prefix[layers.upperBound] - prefix[layers.lowerBound]
        if layers.lowerBound == 0 { bytes += costs.embeddingBytes }
        if layers.upperBound == costs.layerCount { bytes += costs.finalNormBytes }
        bytes += goal.sequences * costs.contextLength * costs.kvBytesPerPositionPerLayer * layers.count
        return bytes + ModelCosts.processOverhead
    }

    /// `layers` on `host`, with its predicted time and memory.
    func stage(_ layers: Range<Int>, on host: Host) -> Plan.Stage {
        Plan.Stage(
            host: host.name,
            address: host.address,
            layers: layers,
            seconds: stageSeconds(layers.count, on: host),
            bytes: stageBytes(layers)
        )
    }

    /// A stage's predicted time per micro-batch on `host`.
    func stageSeconds(_ layers: Int, on host: Host) -> Double {
        Double(layers) * host.profile.layerTime(rows: goal.rows)
    }

    /// Memory a host gives its processes: all of it but a share for the system.
    static func usable(_ host: Host) -> Int { host.memoryBytes - min(host.memoryBytes / 10, 2 << 30) }

    /// The best split: over every set and order of hosts (a subset-and-end dynamic program), contiguous layer
    /// ranges in host order minimizing the slowest stage's time; among equal ones, the fewest stages.
    public func split() throws(PlanError) -> [Plan.Stage] {
        guard !hosts.isEmpty else { throw .noHosts }
        guard hosts.count <= 12 else { throw .tooManyHosts(hosts.count) }
        let layers = costs.layerCount
        let masks = 1 << hosts.count
        // best[mask][end]: (slowest stage, stages) covering layers 0..<end with exactly the hosts in `mask`.
        struct Cell {
            var slowest: Double
            var stages: Int
            var previous: (mask: Int, end: Int, host: Int)?
        }
        var best = [[Cell?]](repeating: [Cell?](repeating: nil, count: layers + 1), count: masks)
        best[0][0] = Cell(slowest: 0, stages: 0, previous: nil)
        // The nearest miss, for the message when nothing fits.
        var closest: (host: String, lacking: Int, layers: Int)?
        for mask in 0..<masks {
            for end in 0..<layers {
                guard let cell = best[mask][end] else { continue }
                for host in hosts.indices where mask & (1 << host) == 0 {
                    for next in (end + 1)...layers {
                        let stage = end..<next
                        let lacking = stageBytes(stage) - Self.usable(hosts[host])
                        if lacking > 0 {
                            if closest == nil || lacking < closest!.lacking {
                                closest = (hosts[host].name, lacking, stage.count)
                            }
                            break  // more layers only need more
                        }
                        let slowest = max(cell.slowest, stageSeconds(stage.count, on: hosts[host]))
                        let candidate = Cell(
                            slowest: slowest,
                            stages: cell.stages + 1,
                            previous: (mask, end, host)
                        )
                        let key = mask | (1 << host)
                        if let current = best[key][next],
                            (current.slowest, current.stages) <= (candidate.slowest, candidate.stages)
                        {
                            continue
                        }
                        best[key][next] = candidate
                    }
                }
            }
        }
        // Within 0.1% of the fastest, fewer stages win: each stage adds a hop to every micro-batch.
        let finished = (1..<masks).compactMap { mask in best[mask][layers].map { (mask, $0) } }
        guard let fastest = finished.map(\.1.slowest).min() else {
            let miss = closest ?? (hosts[0].name, 0, layers)
            throw .doesNotFit(host: miss.host, lacking: miss.lacking, layers: miss.layers)
        }
        let chosen = finished.filter { $0.1.slowest <= fastest * 1.001 }.min { $0.1.stages < $1.1.stages }!
        var stages: [Plan.Stage] = []
        var (mask, end) = (chosen.0, layers)
        while let previous = best[mask][end]?.previous {
            stages.append(stage(previous.end..<end, on: hosts[previous.host]))
            (mask, end) = (previous.mask, previous.end)
        }
        return stages.reversed()
    }

    static func gigabytes(_ bytes: Int) -> String {
        let value = Double(bytes) / Double(1 << 30)
        if value < 1 { return "\(Int((Double(bytes) / Double(1 << 20)).rounded(.up))) MiB" }
        return value >= 10 ? "\(Int(value.rounded())) GiB" : "\(Double(Int(value * 10)) / 10) GiB"
    }
}
