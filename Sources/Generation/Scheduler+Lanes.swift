/// Lanes and the forming of micro-batches.
extension Scheduler {
    /// A sequence in the lane with the fewest, or in its CFG partner's lane.
    mutating func newSequence(job: UInt64, prompt: [StageInput], partner: UInt64? = nil) -> UInt64 {
        let id = nextSequence
        nextSequence += 1
        var sequence = Sequence(job: job, pending: prompt)
        sequence.lane = partner.flatMap { sequences[$0]?.lane } ?? lightestLane(laneLoads())
        sequences[id] = sequence
        return id
    }

    /// Sequences per lane (those on lanes past the depth are not counted).
    func laneLoads() -> [Int] {
        var loads = [Int](repeating: 0, count: configuration.pipelineDepth)
        for sequence in sequences.values where sequence.lane < loads.count { loads[sequence.lane] += 1 }
        return loads
    }

    func lightestLane(_ loads: [Int]) -> Int {
        loads.indices.min { (loads[$0], $0) < (loads[$1], $1) } ?? 0
    }

    /// Moves sequences (each with its CFG partner) that are not in a micro-batch: off lanes the depth no longer has,
    /// then from the fullest lane to the emptiest while that narrows the gap.
    mutating func balanceLanes() {
        let ids = sequences.keys.sorted()
        func movable(_ id: UInt64) -> Bool {
            guard let sequence = sequences[id], !sequence.inBatch else { return false }
            return sequence.partner.map { sequences[$0]?.inBatch != true } ?? true
        }
        func move(_ id: UInt64, to lane: Int) {
            sequences[id]?.lane = lane
            if let partner = sequences[id]?.partner { sequences[partner]?.lane = lane }
        }
        for id in ids where sequences[id]!.lane >= configuration.pipelineDepth && movable(id) {
            move(id, to: lightestLane(laneLoads()))
        }
        while true {
            let loads = laneLoads()
            let light = lightestLane(loads)
            guard let heavy = loads.indices.max(by: { (loads[$0], -$0) < (loads[$1], -$1) }) else { return }
            let gap = loads[heavy] - loads[light]
            let candidate = ids.first { id in
                guard let sequence = sequences[id], sequence.lane == heavy, movable(id) else { return false }
                return (sequence.partner == nil ? 1 : 2) < gap
            }
            guard let id = candidate else { return }
            move(id, to: light)
        }
    }

    /// Forms a micro-batch for each lane that has none in flight: its ready sequences, least recently scheduled first,
    /// each with one slice (its next input, or its next prompt chunk); a ready CFG partner joins the same micro-batch.
    mutating func schedule() -> [Directive] {
        var directives: [Directive] = []
        guard !paused else { return [] }
        balanceLanes()
        // A lane also waits for its token answers: a sequence answered while the rest of its lane is still out would
        // otherwise go alone in the next micro-batch, and the lane would split in two for good. (Patches take many
        // DDIM steps, so a lane does not wait for them; an image sequence rejoins its lane's next micro-batch.)
        var busy = Set(inFlight.values.map(\.lane))
        for case .tokens(let ids) in outstanding.values {
            for id in ids { if let lane = sequences[id]?.lane { busy.insert(lane) } }
        }
        for lane in 0..<configuration.pipelineDepth where !busy.contains(lane) {
            guard inFlight.count < configuration.pipelineDepth else { break }
            let ready = sequences.filter { $0.value.isReady && $0.value.lane == lane }
                .sorted { ($0.value.lastScheduled, $0.key) < ($1.value.lastScheduled, $1.key) }.map(\.key)
            guard !ready.isEmpty else { continue }
            var slices: [SequenceSlice] = []
            var inputs: [StageInput] = []
            var taken = Set<UInt64>()
            tick += 1
            for id in ready where !taken.contains(id) {
                var group = [id]
                if let partner = sequences[id]?.partner, ready.contains(partner), !taken.contains(partner) {
                    group.append(partner)
                }
                // A pair shares a micro-batch, so each member takes at most half of it: an empty one always fits both.
                let chunk =
                    group.count == 2
                    ? min(configuration.prefillChunk, configuration.maxRows / 2) : configuration.prefillChunk
                let counts = group.map { min(sequences[$0]!.pending.count, chunk) }
                let room = configuration.maxRows - inputs.count
                guard room > 0 else { break }
                // A pair goes in whole or waits for the next micro-batch; a lone sequence takes what room there is.
                if group.count == 2 && counts.reduce(0, +) > room { continue }
                for (member, count) in zip(group, counts) {
                    let rows = min(count, configuration.maxRows - inputs.count)
                    let taking = sequences[member]!.pending.prefix(rows)
                    slices.append(SequenceSlice(sequenceID: member, start: sequences[member]!.position, count: rows))
                    inputs += taking
                    sequences[member]!.history += taking
                    sequences[member]!.pending.removeFirst(rows)
                    sequences[member]!.position += rows
                    sequences[member]!.inBatch = true
                    sequences[member]!.lastScheduled = tick
                    taken.insert(member)
                }
            }
            guard !slices.isEmpty else { continue }
            let id = nextMicroBatch
            nextMicroBatch += 1
            inFlight[id] = Flight(lane: lane, slices: slices)
            directives.append(.forward(microBatch: id, slices: slices, inputs: inputs))
        }
        return directives
    }
}
