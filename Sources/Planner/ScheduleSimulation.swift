/// An event simulation of the coordinator's schedule on a plan, for text jobs: the sequences spread over lanes (one
/// micro-batch in flight per lane, `depth` lanes, a new sequence joining the emptiest), each lane's micro-batch
/// (prefill chunks of 64 positions and one row per decoding sequence) sent through the stages in order, each stage
/// running one micro-batch at a time in arrival order, over links with a latency, a per-message cost and a bandwidth,
/// then to the LM-head worker and back; a lane's next micro-batch waits for its tokens. Costs are the hosts' profiles
/// (a stage's layers times its time per layer). Predicts throughput, time per output token and each stage's idle share.
/// Pure: no clock, no randomness.
public struct ScheduleSimulation: Sendable {
    /// A link between two processes: one-way latency, the cost of one message on it (framing, the socket's I/O
    /// thread, the receiver's wake-up), and bandwidth.
    public struct Link: Sendable, Equatable {
        public var latency: Double
        public var perMessage: Double
        public var bytesPerSecond: Double

        public init(latency: Double = 0, perMessage: Double = 0, bytesPerSecond: Double = .infinity) {
            self.latency = latency
            self.perMessage = perMessage
            self.bytesPerSecond = bytesPerSecond
        }

        func seconds(bytes: Int) -> Double { latency + perMessage + Double(bytes) / bytesPerSecond }
    }

    public struct Workload: Sendable, Equatable {
        public var jobs: Int
        public var promptTokens: Int
        public var tokens: Int

        public init(jobs: Int, promptTokens: Int, tokens: Int) {
            self.jobs = jobs
            self.promptTokens = promptTokens
            self.tokens = tokens
        }
    }

    public struct Result: Sendable, Equatable {
        public var seconds: Double
        public var tokens: Int
        public var tokensPerSecond: Double
        /// Mean time between a sequence's tokens after its first.
        public var timePerToken: Double
        /// Each stage's share of the run spent idle.
        public var stageIdle: [Double]
    }

    public struct Stage: Sendable, Equatable {
        public var layers: Int
        public var profile: HostProfile

        public init(layers: Int, profile: HostProfile) {
            self.layers = layers
            self.profile = profile
        }
    }

    public var stages: [Stage]
    public var lmHead: HostProfile
    /// Links: coordinator → stage 0, stage i → i + 1, last stage → coordinator, then coordinator ⇄ LM head.
    public var links: [Link]
    public var lmLink: Link
    public var depth: Int
    public var hiddenSize: Int
    /// The coordinator's own time per micro-batch (scheduling, framing the micro-batch and the token request).
    public var coordinatorSeconds: Double
    public static let prefillChunk = 64

    public init(
        stages: [Stage],
        lmHead: HostProfile,
        links: [Link],
        lmLink: Link,
        depth: Int,
        hiddenSize: Int,
        coordinatorSeconds: Double = 0
    ) {
        precondition(links.count == stages.count + 1, "a link into each stage and one out of the last")
        self.stages = stages
        self.lmHead = lmHead
        self.links = links
        self.lmLink = lmLink
        self.depth = max(1, depth)
        self.hiddenSize = hiddenSize
        self.coordinatorSeconds = coordinatorSeconds
    }

    private struct Sequence {
        var promptLeft: Int
        var generated = 0
        var tokenTimes: [Double] = []
    }

    /// One micro-batch on its way: its lane, where it is (a stage index, or `stages.count` for the LM head), when it
    /// gets there, and its rows.
    private struct Trip {
        var lane: Int
        var place: Int
        var at: Double
        var decodeRows: Int
        var prefillRows: Int
        var tokenRows: Int
    }

    public func run(_ workload: Workload) -> Result {
        var sequences = (0..<workload.jobs).map { _ in Sequence(promptLeft: workload.promptTokens) }
        let lanes = (0..<depth).map { lane in Array(stride(from: lane, to: workload.jobs, by: depth)) }
        var free = [Double](repeating: 0, count: stages.count + 1)
        var busy = [Double](repeating: 0, count: stages.count)
        var pending: [Trip] = []
        var end = 0.0
        let rowBytes = hiddenSize * 4

        /// The lane's next micro-batch, leaving the coordinator at `at`; nil when its sequences are done.
        func start(_ lane: Int, at: Double) -> Trip? {
            var trip = Trip(
                lane: lane,
                place: 0,
                at: at + coordinatorSeconds,
                decodeRows: 0,
                prefillRows: 0,
                tokenRows: 0
            )
            for index in lanes[lane] where sequences[index].generated < workload.tokens {
                if sequences[index].promptLeft > 0 {
                    let chunk = min(Self.prefillChunk, sequences[index].promptLeft)
                    trip.prefillRows += chunk
                    if chunk == sequences[index].promptLeft { trip.tokenRows += 1 }
                } else {
                    trip.decodeRows += 1
                    trip.tokenRows += 1
                }
            }
            guard trip.decodeRows + trip.prefillRows > 0 else { return nil }
            trip.at += links[0].seconds(bytes: (trip.decodeRows + trip.prefillRows) * rowBytes)
            return trip
        }

        for lane in lanes.indices { if let trip = start(lane, at: 0) { pending.append(trip) } }
        // Always move the micro-batch that arrives first: each place serves in arrival order.
        while let next = pending.indices.min(by: { pending[$0].at < pending[$1].at }) {
            var trip = pending.remove(at: next)
            if trip.place < stages.count {
                let stage = stages[trip.place]
                let perLayer =
                    (trip.decodeRows > 0 ? stage.profile.layerTime(rows: trip.decodeRows) : 0)
                    + stage.profile.prefillLayerSeconds * Double(trip.prefillRows)
                    / Double(max(1, stage.profile.prefillChunk))
                let begin = max(trip.at, free[trip.place])
                let seconds = Double(stage.layers) * perLayer
                free[trip.place] = begin + seconds
                busy[trip.place] += seconds
                // Between stages every row travels; out of the last, one row per sequence.
                let last = trip.place == stages.count - 1
                let rows = last ? lanes[trip.lane].count : trip.decodeRows + trip.prefillRows
                trip.at = begin + seconds + links[trip.place + 1].seconds(bytes: rows * rowBytes)
                trip.place += 1
                if last {
                    trip.at += lmLink.seconds(bytes: trip.tokenRows * rowBytes)
                }
                pending.append(trip)
            } else {
                // The LM head: the rows that need a token; the tokens go back to the coordinator.
                let begin = max(trip.at, free[trip.place])
                let seconds = Double(trip.tokenRows) * lmHead.lmHeadSecondsPerRow
                free[trip.place] = begin + seconds
                let back = begin + seconds + lmLink.seconds(bytes: 8 * trip.tokenRows)
                for index in lanes[trip.lane] where sequences[index].generated < workload.tokens {
                    if sequences[index].promptLeft > 0 {
                        let chunk = min(Self.prefillChunk, sequences[index].promptLeft)
                        sequences[index].promptLeft -= chunk
                        if sequences[index].promptLeft > 0 { continue }
                    }
                    sequences[index].generated += 1
                    sequences[index].tokenTimes.append(back)
                }
                end = max(end, back)
                if let again = start(trip.lane, at: back) { pending.append(again) }
            }
        }
        let tokens = sequences.reduce(0) { $0 + $1.generated }
        let gaps = sequences.compactMap { sequence -> Double? in
            guard sequence.tokenTimes.count > 1 else { return nil }
            return (sequence.tokenTimes.last! - sequence.tokenTimes.first!) / Double(sequence.tokenTimes.count - 1)
        }
        return Result(
            seconds: end,
            tokens: tokens,
            tokensPerSecond: end > 0 ? Double(tokens) / end : 0,
            timePerToken: gaps.isEmpty ? 0 : gaps.reduce(0, +) / Double(gaps.count),
            stageIdle: busy.map { end > 0 ? 1 - $0 / end : 0 }
        )
    }
}
