extension Planner.Host {
    /// This host's network attachment, for messages to and from other hosts: one-way latency and bandwidth (nil:
    /// loopback only, as when every process runs here).
    public struct Network: Codable, Sendable, Equatable {
        public var latencySeconds: Double
        public var bytesPerSecond: Double

        public init(latencySeconds: Double, bytesPerSecond: Double) {
            self.latencySeconds = latencySeconds
            self.bytesPerSecond = bytesPerSecond
        }
    }
}

extension Planner {
    /// The link a message takes from one host to another: the sender's message cost, and across hosts both ends'
    /// latency and the slower end's bandwidth.
    func link(from: String, to: String, networks: [String: Host.Network]) -> ScheduleSimulation.Link {
        let sender = hosts.first { $0.name == from }
        var link = ScheduleSimulation.Link(perMessage: sender?.profile.messageSeconds ?? 0)
        guard from != to else { return link }
        let ends = [networks[from], networks[to]].compactMap { $0 }
        link.latency = ends.reduce(0) { $0 + $1.latencySeconds }
        link.bytesPerSecond = ends.map(\.bytesPerSecond).min() ?? .infinity
        return link
    }

    /// The schedule simulation of a plan, the coordinator on `coordinator`'s host.
    public func simulation(
        of plan: Plan,
        coordinator: String,
        networks: [String: Host.Network] = [:]
    ) -> ScheduleSimulation {
        let profiles = Dictionary(hosts.map { ($0.name, $0.profile) }, uniquingKeysWith: { a, _ in a })
        let places = [coordinator] + plan.stages.map(\.host) + [coordinator]
        let links = zip(places, places.dropFirst()).map { link(from: $0, to: $1, networks: networks) }
        let lmHost = plan.workers.first { $0.role == "lm-head" }?.host ?? coordinator
        return ScheduleSimulation(
            stages: plan.stages.map { .init(layers: $0.layers.count, profile: profiles[$0.host]!) },
            lmHead: profiles[lmHost]!,
            links: links,
            lmLink: link(from: coordinator, to: lmHost, networks: networks),
            depth: plan.depth,
            hiddenSize: profiles[plan.stages[0].host]!.hiddenSize
        )
    }

    /// The micro-batches in flight that the simulation finds fastest for `sequences` text jobs, from one per stage
    /// (the coordinator's least) to two per stage; the fewer among equals (each splits the running sequences further).
    public func bestDepth(for plan: Plan, sequences: Int) -> Int {
        var best = (depth: plan.stages.count, rate: 0.0)
        for depth in plan.stages.count...(2 * plan.stages.count) {
            var trial = plan
            trial.depth = depth
            let rate = simulation(of: trial, coordinator: plan.stages[0].host)
                .run(.init(jobs: sequences, promptTokens: 32, tokens: 64)).tokensPerSecond
            if rate > best.rate * 1.01 { best = (depth, rate) }
        }
        return best.depth
    }
}
