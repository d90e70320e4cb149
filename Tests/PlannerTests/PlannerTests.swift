import Testing

@testable import Planner

/// The planner on host sets of Orthus-7B's geometry (32 layers of 404 MB in bf16, KV of 32 KiB per position and
/// layer, 4,096 positions): equal hosts, hosts of 8, 16 and 32 GB of unequal speed, and a set the model cannot fit.
/// The profiles are made up (this is the pure planning logic); `orthus profile` measures real ones.
@Suite struct PlannerTests {
    static let gib = 1 << 30
    static let costs = ModelCosts(
        layerBytes: Array(repeating: 404 << 20, count: 32),
        embeddingBytes: 512 << 20,
        finalNormBytes: 16 << 10,
        lmHeadBytes: 512 << 20,
        diffusionWorkerBytes: 600 << 20,
        kvBytesPerPositionPerLayer: 32 << 10,
        contextLength: 4096,
        patchesPerImage: 1024
    )

    /// A host whose layer takes `layer` seconds per micro-batch row count of 1 and grows a little with rows.
    static func host(_ name: String, gib memory: Int, layer: Double, cores: Int = 8) -> Planner.Host {
        let profile = HostProfile(
            host: name,
            cores: cores,
            threads: 1,
            memoryBytes: memory * gib,
            availableBytes: memory * gib,
            readBytesPerSecond: 20e9,
            sgemmFlopsPerSecond: 100e9,
            hiddenSize: 4096,
            intermediateSize: 11008,
            layerSeconds: [1: layer, 4: layer * 1.1, 16: layer * 1.6],
            prefillChunk: 64,
            prefillLayerSeconds: layer * 4,
            lmHeadSecondsPerRow: 0.002,
            diffusionSecondsPerRowStep: 0.0001,
            vqDecodeSeconds: 0.5,
            messageSeconds: 0.0001
        )
        return Planner.Host(
            name: name,
            address: "10.0.0.\(name.count)",
            memoryBytes: memory * gib,
            cores: cores,
            profile: profile
        )
    }

    static func check(_ plan: Plan, _ planner: Planner) {
        // Contiguous ranges over every layer, one host each, each within its host's usable memory.
        #expect(plan.stages.first?.layers.lowerBound == 0 && plan.stages.last?.layers.upperBound == 32)
        for (a, b) in zip(plan.stages, plan.stages.dropFirst()) { #expect(a.layers.upperBound == b.layers.lowerBound) }
        #expect(Set(plan.stages.map(\.host)).count == plan.stages.count)
        var used: [String: Int] = [:]
        for stage in plan.stages { used[stage.host, default: 0] += stage.bytes }
        for worker in plan.workers { used[worker.host, default: 0] += worker.bytes }
        for host in planner.hosts { #expect(used[host.name, default: 0] <= Planner.usable(host), "\(host.name)") }
        #expect(plan.workers.contains { $0.role == "lm-head" } && plan.workers.contains { $0.role == "diffusion-head" })
        // No worse than the even split over the same hosts, where that fits.
        if let even = planner.evenSplit() {
            #expect(plan.stages[plan.bottleneck].seconds <= even.map(\.seconds).max()! * 1.0001)
        }
    }

    @Test func equalHostsShareTheLayersEvenly() throws {
        let hosts = (0..<4).map { Self.host("h\($0)", gib: 16, layer: 0.01) }
        let planner = Planner(hosts: hosts, costs: Self.costs, goal: .init(sequences: 1))
        let plan = try planner.plan()
        Self.check(plan, planner)
        #expect(plan.stages.map(\.layers.count) == [8, 8, 8, 8])
        // One micro-batch per stage in flight: the pipeline passes a micro-batch every slowest-stage time.
        let stageTime = 8 * hosts[0].profile.layerTime(rows: 8)
        #expect(abs(plan.stages[plan.bottleneck].seconds - stageTime) < 1e-12)
        #expect(plan.depth == 4 && plan.rowsPerSecond <= 8 / stageTime + 1e-9)
    }

    @Test func unequalHostsGiveTheFasterMoreLayersWithinTheirMemory() throws {
        // 8 GB fast, 16 GB middling, 32 GB slow: the fast host is held back by its memory.
        let hosts = [
            Self.host("small-fast", gib: 8, layer: 0.005),
            Self.host("mid", gib: 16, layer: 0.01),
            Self.host("big-slow", gib: 32, layer: 0.02),
        ]
        let planner = Planner(hosts: hosts, costs: Self.costs, goal: .init(sequences: 1))
        let plan = try planner.plan()
        Self.check(plan, planner)
        let layers = Dictionary(uniqueKeysWithValues: plan.stages.map { ($0.host, $0.layers.count) })
        #expect(layers["small-fast", default: 0] >= layers["mid", default: 0], "\(layers)")
        #expect(layers["mid", default: 0] > layers["big-slow", default: 0], "\(layers)")
        let even = try #require(planner.evenSplit())
        #expect(plan.stages[plan.bottleneck].seconds < even.map(\.seconds).max()!)
        // More KV room per sequence moves layers off the small host.
        let roomy = Planner(hosts: hosts, costs: Self.costs, goal: .init(sequences: 4))
        let roomier = try roomy.plan()
        Self.check(roomier, roomy)
        let small = roomier.stages.first { $0.host == "small-fast" }?.layers.count ?? 0
        #expect(small < layers["small-fast", default: 0], "\(roomier.stages)")
    }

    @Test func aSetThatCannotHoldTheModelIsToldWhichHostLacksHowMuch() {
        let hosts = (0..<3).map { Self.host("tiny\($0)", gib: 4, layer: 0.01) }
        let planner = Planner(hosts: hosts, costs: Self.costs, goal: .init(sequences: 1))
        #expect {
            try planner.plan()
        } throws: { error in
            guard case Planner.PlanError.doesNotFit(let host, let lacking, _) = error else { return false }
            return host.hasPrefix("tiny") && lacking > 0 && "\(error)".contains(" short for its layers")
        }
        #expect(throws: Planner.PlanError.noHosts) { try Planner(hosts: [], costs: Self.costs, goal: .init()).plan() }
    }

    @Test func aLayersTimeIsInterpolatedBetweenMeasuredRowCounts() {
        let profile = Self.host("h", gib: 16, layer: 0.01).profile
        #expect(profile.layerTime(rows: 1) == 0.01)
        #expect(abs(profile.layerTime(rows: 10) - 0.0135) < 1e-12)
        #expect(abs(profile.layerTime(rows: 28) - 0.021) < 1e-12)  // beyond 16: the last slope carries on
    }

    @Test func theDiffusionPoolIsSizedToTheMixAndLimitsWhenItCannotKeepUp() throws {
        let hosts = [Self.host("a", gib: 32, layer: 0.01, cores: 3), Self.host("b", gib: 32, layer: 0.01, cores: 3)]
        let planner = Planner(hosts: hosts, costs: Self.costs, goal: .init(sequences: 1, imageShare: 0.5))
        let plan = try planner.plan()
        Self.check(plan, planner)
        let diffusion = plan.workers.filter { $0.role == "diffusion-head" }.count
        // Cores: 6, less 2 stages and the LM head: at most 3 diffusion workers, each 1/(100·2·1e-4) = 50 patches/s.
        #expect(diffusion >= 1 && diffusion <= 3)
        #expect(abs(plan.diffusionPatchesPerSecond - Double(diffusion) * 50) < 1e-6)
        if plan.patchDemandPerSecond > plan.diffusionPatchesPerSecond {
            #expect(plan.limitedBy == "diffusion pool")
        } else {
            #expect(plan.limitedBy.hasPrefix("stage"))
        }
        #expect(plan.tokensPerSecond > 0 && plan.imagesPerMinute > 0)
    }
}
