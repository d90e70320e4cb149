import Testing

@testable import Planner

/// The schedule simulation against cases worked by hand: one job through one stage, pipelining with two lanes, and
/// what link latency and per-message costs add to each token.
@Suite struct ScheduleSimulationTests {
    static let profile = PlannerTests.host("h", gib: 16, layer: 0.001).profile

    static func simulation(
        stages: Int,
        layers: Int,
        depth: Int,
        link: ScheduleSimulation.Link = .init()
    )
        -> ScheduleSimulation
    {
        ScheduleSimulation(
            stages: (0..<stages).map { _ in .init(layers: layers, profile: profile) },
            lmHead: profile,
            links: Array(repeating: link, count: stages + 1),
            lmLink: link,
            depth: depth,
            hiddenSize: 4096
        )
    }

    @Test func oneJobThroughOneStageTakesItsPrefillThenOneTripPerToken() {
        let result = Self.simulation(stages: 1, layers: 4, depth: 1).run(.init(jobs: 1, promptTokens: 32, tokens: 10))
        let p = Self.profile
        let prefill = 4 * p.prefillLayerSeconds * 32 / 64 + p.lmHeadSecondsPerRow
        let decode = 4 * p.layerTime(rows: 1) + p.lmHeadSecondsPerRow
        #expect(result.tokens == 10)
        #expect(abs(result.seconds - (prefill + 9 * decode)) < 1e-12, "\(result)")
        #expect(abs(result.timePerToken - decode) < 1e-12)
        // The stage is busy for its compute only; the LM head's time is its idle time.
        #expect(
            abs(
                result.stageIdle[0] - (1 - (4 * p.prefillLayerSeconds / 2 + 36 * p.layerTime(rows: 1)) / result.seconds)
            ) < 1e-9
        )
    }

    @Test func twoLanesKeepTwoStagesBusyAndGiveMoreTokensPerSecond() {
        let workload = ScheduleSimulation.Workload(jobs: 8, promptTokens: 16, tokens: 32)
        let one = Self.simulation(stages: 2, layers: 4, depth: 1).run(workload)
        let two = Self.simulation(stages: 2, layers: 4, depth: 2).run(workload)
        #expect(one.tokens == 256 && two.tokens == 256)
        #expect(two.tokensPerSecond > one.tokensPerSecond * 1.2, "\(one.tokensPerSecond) → \(two.tokensPerSecond)")
        #expect(two.stageIdle.allSatisfy { $0 < one.stageIdle.max()! })
    }

    @Test func linkLatencyAndMessageCostsAddToEveryTokensTrip() {
        let workload = ScheduleSimulation.Workload(jobs: 1, promptTokens: 8, tokens: 20)
        let plain = Self.simulation(stages: 2, layers: 2, depth: 1).run(workload)
        let link = ScheduleSimulation.Link(latency: 0.005, perMessage: 0.0001)
        let slow = Self.simulation(stages: 2, layers: 2, depth: 1, link: link).run(workload)
        // Three links through the pipeline and two to the LM head and back: five messages per token.
        #expect(abs(slow.timePerToken - plain.timePerToken - 5 * 0.0051) < 1e-9, "\(slow.timePerToken)")
    }

    /// A plan across two hosts: messages between them pay both ends' latency and the slower end's bandwidth;
    /// messages within a host only the sender's message cost.
    @Test func aPlansLinksCarryTheHostsNetworks() throws {
        let hosts = [PlannerTests.host("a", gib: 16, layer: 0.01), PlannerTests.host("b", gib: 16, layer: 0.01)]
        let planner = Planner(hosts: hosts, costs: PlannerTests.costs, goal: .init(sequences: 1, imageShare: 0))
        let plan = try planner.plan()
        #expect(plan.stages.map(\.host) == ["a", "b"] || plan.stages.map(\.host) == ["b", "a"])
        let networks: [String: Planner.Host.Network] = [
            "a": .init(latencySeconds: 0.002, bytesPerSecond: 1e9),
            "b": .init(latencySeconds: 0.003, bytesPerSecond: 5e8),
        ]
        let first = plan.stages[0].host
        let simulation = planner.simulation(of: plan, coordinator: first, networks: networks)
        // Coordinator → first stage on its own host, across to the second stage, and back across.
        #expect(simulation.links.map(\.latency) == [0, 0.005, 0.005])
        #expect(simulation.links[1].bytesPerSecond == 5e8 && simulation.links[0].bytesPerSecond == .infinity)
        #expect(simulation.links.allSatisfy { $0.perMessage == 0.0001 })
        let plain = planner.simulation(of: plan, coordinator: first).run(.init(jobs: 1, promptTokens: 8, tokens: 10))
        let slow = simulation.run(.init(jobs: 1, promptTokens: 8, tokens: 10))
        #expect(slow.timePerToken > plain.timePerToken + 0.01)
    }

    /// The planner's depth: the goal's when given, else the simulation's fastest from one to two per stage.
    @Test func thePlansDepthIsTheGoalsOrTheSimulationsFastest() throws {
        let hosts = (0..<2).map { PlannerTests.host("h\($0)", gib: 64, layer: 0.01) }
        let chosen = try Planner(hosts: hosts, costs: PlannerTests.costs, goal: .init(sequences: 8)).plan()
        #expect((2...4).contains(chosen.depth))
        let given = try Planner(hosts: hosts, costs: PlannerTests.costs, goal: .init(sequences: 8, depth: 3)).plan()
        #expect(given.depth == 3)
        let planner = Planner(hosts: hosts, costs: PlannerTests.costs, goal: .init(sequences: 8))
        let rates = (2...4).map { depth -> Double in
            var trial = chosen
            trial.depth = depth
            return planner.simulation(of: trial, coordinator: trial.stages[0].host)
                .run(.init(jobs: 8, promptTokens: 32, tokens: 64)).tokensPerSecond
        }
        #expect(rates[chosen.depth - 2] >= rates.max()! / 1.01, "\(rates)")
    }
}
