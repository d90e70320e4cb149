import ClusterProtocol
import Membership
import Runtime

/// Deadlines: head requests and micro-batches that take far longer than their pool or pipeline usually does are
/// taken from the worker holding them instead of waiting for it to be declared down (it may heartbeat forever).
extension CoordinatorCore {
    /// A head worker that heartbeats but does not answer (a stuck compute thread) would hold its requests until it is
    /// declared down, and every job with them: a request past its pool's deadline goes to another worker at once, and
    /// the holder gets no new work until it answers. With no other worker it stays where it is.
    func resendOverdueHeadRequests() {
        for (pool, role, name) in [
            (\CoordinatorCore.lmPool, WorkerRole.lmHead, "LM-head"), (\.diffusionPool, .diffusionHead, "diffusion"),
        ] {
            for (request, worker) in self[keyPath: pool].overdue(at: now) {
                let others = desk.machine.available(role).map(\.id).filter {
                    $0 != worker && info[$0]?.peer != nil && !self[keyPath: pool].slow.contains($0)
                }
                guard !others.isEmpty else { continue }
                let deadline = self[keyPath: pool].deadline(of: request)
                note("\(name) request \(request) passed its deadline of \(deadline) on \(describe(worker)); re-sent")
                self[keyPath: pool].resend(request)
            }
        }
        dispatch()
    }

    /// A stage that heartbeats but does not run its input (a stuck compute thread) would hold the pipeline until it is
    /// declared down, which it never is. When the oldest micro-batch in flight passes its deadline, the stage it is
    /// stuck on is the first of the chain whose heartbeats, sent after the deadline, have not reported it (a stage
    /// runs micro-batches in the order they arrive), or that is silent (suspect). That stage is marked slow; if a
    /// chain can do without it (a spare stage covers its layers), the pipeline is re-formed on that chain and every
    /// sequence replayed onto it, so the output is the same. A slow stage is used again once it reports progress, or
    /// when no chain can do without it.
    func checkMicroBatchDeadlines() {
        guard pipeline.isReady, let late = batchClock.oldestOverdue(at: now) else { return }
        for id in pipeline.chain {
            guard let worker = info[id] else { return }
            if worker.load.finishedMicroBatch >= late.microBatch { continue }
            // Only a report from after the deadline shows the stage had that long: else wait for its next heartbeat. A
            // stage that has gone quiet (suspect) reports nothing: it is stuck as far as this micro-batch goes, and a
            // spare takes over now instead of after the down time.
            let silent = desk.members[id]?.status == .suspect
            guard silent || (worker.loadAt.map { $0 > late.sentAt + late.deadline } ?? false) else { return }
            let newlySlow = slowStages.insert(id).inserted
            let stages = usableStages.filter { !slowStages.contains($0.id) }
            let reason = "micro-batch \(late.microBatch) passed its deadline of \(late.deadline) on \(describe(id))"
            guard PipelineChain.find(stages, layerCount: planner.layerCount) != nil else {
                // Checked again every tick: a spare that joins later takes over then.
                if newlySlow { note("\(reason); no spare stage can take its layers, so the pipeline waits for it") }
                return
            }
            breakPipeline("\(reason); re-forming the pipeline without it")
            membershipChanged()
            return
        }
    }

    /// A worker's heartbeat: its load, and for a slow stage, whether it has run anything since.
    func heartbeat(from id: WorkerID, _ load: WorkerLoad) {
        if let before = info[id]?.load.finishedMicroBatch, load.finishedMicroBatch > before, slowStages.contains(id) {
            slowStages.remove(id)
            note("\(describe(id)) runs micro-batches again")
        }
        var kept = load
        kept.spans = []  // the trace keeps them
        info[id]?.load = kept
        info[id]?.loadAt = now
        trace.beat(worker: id.value, busy: UInt64(max(0, load.busy.microseconds)), spans: load.spans)
        if let place = pipeline.chain.firstIndex(of: id) {
            metrics.noteBusy(place, worker: id, busy: load.busy, at: now)
        }
    }
}
