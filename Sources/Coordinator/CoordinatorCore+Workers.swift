import ClusterProtocol
import Foundation
import Generation
import Membership
import Tensor
import Transport
import Wire

/// Worker messages, membership and the pipeline.
extension CoordinatorCore {
    // MARK: - Worker messages

    func handleWorker(_ frames: [ZMQMessage], from peer: PeerIdentity) {
        let message: WireMessage
        do {
            message = try WireMessage.parse(frames, routingFrames: 1)
        } catch {
            rejectedWorker += 1
            if frames.count > 1 {
                emit(
                    WireMessage(routing: [frames[0]], envelope: .failure(about: nil, error: error)),
                    CoordinatorAction.toWorkers,
                    "a refusal"
                )
            }
            return
        }
        let kind = message.envelope.kind
        if (MessageKind.register.rawValue...MessageKind.refused.rawValue).contains(kind) {
            let outcome = desk.handle(message, from: peer, at: now)
            if let reply = outcome.reply { emit(reply, CoordinatorAction.toWorkers, "a membership reply") }
            if let reported = outcome.load { heartbeat(from: reported.id, reported.load) }
            if let joined = outcome.joined {
                info[joined.id] = WorkerInfo(registration: joined.registration)
                note("\(describe(joined.id)) joined from \(joined.registration.host)")
            }
            apply(outcome.directives)
            return
        }
        let routing = message.routing.first?.bytes ?? []
        if kind == MessageKind.hello.rawValue {
            hello(from: routing, peer: peer, message: message)
            return
        }
        // A data socket speaks for its worker only with the key that registered it (a routing id can be copied).
        guard let sender = peers[routing], desk.identities[sender] == peer else {
            refuseWorker(message, WorkerMessageError.unknownPeer)
            return
        }
        do {
            try handleData(message, from: sender)
        } catch {
            refuseWorker(message, error)
        }
    }

    private func refuseWorker(_ message: WireMessage, _ error: any Error) {
        rejectedWorker += 1
        metrics.refusedWorker.increment()
        // Failure reports are never answered with failure reports.
        guard message.envelope.kind != Envelope.failureKind else { return }
        emit(
            WireMessage(routing: message.routing, envelope: .failure(about: message.envelope, error: error)),
            CoordinatorAction.toWorkers,
            "a refusal"
        )
    }

    private func hello(from routing: [UInt8], peer: PeerIdentity, message: WireMessage) {
        let id = WorkerID(message.envelope.workerID)
        guard let member = desk.members[id], member.status != .down, info[id] != nil, desk.identities[id] == peer,
            let registration = info[id]?.registration, routing == WorkerLink.dataRoutingID(registration)
        else {
            refuseWorker(message, MembershipMachine.Refusal.unknownWorker(id))
            return
        }
        if let old = info[id]?.peer { peers[old] = nil }
        peers[routing] = id
        info[id]?.peer = routing
        membershipChanged()
    }

    private func handleData(_ message: WireMessage, from sender: WorkerID) throws {
        let e = message.envelope
        switch e.kind {
        case MessageKind.output.rawValue:
            let batch = try StageBatch.parse(message)
            guard case .hidden(let rows) = batch.input else { throw WorkerMessageError.unexpected(e.kind) }
            apply(try scheduler.stageOutput(microBatch: batch.microBatch, lastRows: rows))
            batchClock.answered(batch.microBatch, at: now)
            trace.returned(microBatch: batch.microBatch, at: wallNow())
        case MessageKind.routed.rawValue:
            pipeline.awaitingRoute.remove(sender)
            openPipelineIfRouted()
        case MessageKind.sampledTokens.rawValue:
            guard case .tokens(let request) = lmPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try TokenReply.parse(
                message,
                rows: request.rows.count,
                vocabularySize: planner.configuration.vocabSize
            )
            _ = lmPool.complete(e.requestID, by: sender, at: now)
            apply(try scheduler.sampled(requestID: reply.requestID, tokens: reply.tokens))
            dispatch()
        case MessageKind.sampledPatches.rawValue:
            guard case .patches(_, let owners, let places, let asked) = diffusionPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try PatchReply.parse(message, patches: owners.count, latentDim: planner.latentDim)
            _ = diffusionPool.complete(e.requestID, by: sender, at: now)
            var latents = [[Float]](repeating: [], count: asked)
            for (latent, place) in zip(reply.latents, places) { latents[place] = latent }
            apply(try scheduler.patchesSampled(requestID: reply.requestID, latents: latents))
            dispatch()
        case MessageKind.decodedImage.rawValue:
            guard case .decode(let job, let image, let latents) = diffusionPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try ImagePNG.parse(message)
            _ = diffusionPool.complete(e.requestID, by: sender, at: now)
            decoded(job: job, image: image, latents: latents, png: reply.png)
            dispatch()
        case MessageKind.encodedImage.rawValue:
            guard case .encode(let job, _) = diffusionPool.payloads[e.requestID] else {
                throw Scheduler.Refusal.unknownRequest(e.requestID)
            }
            let reply = try ImageLatents.parse(message, patches: planner.patches, latentDim: planner.latentDim)
            _ = diffusionPool.complete(e.requestID, by: sender, at: now)
            encoded(job: job, latents: reply.latents)
            dispatch()
        case Envelope.failureKind:
            workerFailure(e, from: sender)
        default:
            throw WorkerMessageError.unexpected(e.kind)
        }
    }

    /// A worker could not serve a request: the jobs that depended on it fail with the worker's reason. Only the
    /// worker holding the work can fail it: a report about a request since re-sent elsewhere, or from a stage no
    /// longer in the pipeline, changes nothing.
    private func workerFailure(_ e: Envelope, from sender: WorkerID) {
        // A failure report is not a refused message: the jobs it fails are counted as failed.
        let role = desk.members[sender]?.role
        let reason = "\(describe(sender)) failed: \(e.error)"
        var affected: [UInt64] = []
        switch role {
        case .stage:
            guard pipeline.chain.contains(sender) else { return }
            batchClock.forget(e.microBatch)
            let (jobs, directives) = scheduler.abandon(microBatch: e.microBatch)
            affected = jobs
            apply(directives)
        case .lmHead:
            guard lmPool.holder[e.requestID] == sender else { return }
            affected = lmPool.complete(e.requestID).map { jobs(of: $0) } ?? []
        case .diffusionHead:
            guard diffusionPool.holder[e.requestID] == sender else { return }
            affected = diffusionPool.complete(e.requestID).map { jobs(of: $0) } ?? []
        case nil: break
        }
        // Failing a job cancels it in the scheduler too, which schedules what its freed places let run.
        for job in affected { fail(job, reason) }
    }

    // MARK: - Membership

    func handleTick() {
        apply(desk.tick(at: now))
        resendOverdueHeadRequests()
        checkMicroBatchDeadlines()
        refreshMetrics()
        // Jobs wait for a replacement stage only so long.
        if let broken, now - broken.since > options.replayTimeout {
            let running = jobs.values.filter { $0.phase == .running }.map(\.id).sorted()
            if !running.isEmpty {
                note("no replacement stage within \(options.replayTimeout); failing \(running.count) job(s)")
            }
            for job in running {
                fail(job, "\(broken.reason), and no replacement joined within \(options.replayTimeout)")
            }
            self.broken = (now, broken.reason)
        }
    }

    func apply(_ directives: [MembershipMachine.Directive]) {
        // Nothing changed (a refusal, a heartbeat, a quiet tick): no pipeline to re-plan, no work to re-dispatch. A
        // flood of refused registrations cost a scan of every member per message before this.
        guard !directives.isEmpty else { return }
        for directive in directives {
            guard case .announce(let id, let status) = directive else { continue }
            switch status {
            case .alive, .suspect: break
            case .draining:
                leaving.insert(id)
                // Sent on the data socket, after any request already sent to it: once the worker reads this, it has
                // everything it will get.
                // A stage leaves at once instead (its caches cannot be handed over).
                if desk.members[id]?.role == .lmHead || desk.members[id]?.role == .diffusionHead {
                    sendToWorker(id, MembershipMessage.drainAccepted(worker: id.value).message)
                }
            case .down:
                lost(id)
            }
        }
        membershipChanged()
    }

    /// A worker is gone: its head requests are re-sent elsewhere; a stage in the pipeline takes the pipeline down
    /// until a replacement joins, and then every sequence is replayed onto the new pipeline.
    private func lost(_ id: WorkerID) {
        // A worker that drained and left is not a failure, and its log line says so; one that left before answering
        // everything (stopped a second time during its drain) is told apart, as is what goes to other workers.
        let drained = leaving.remove(id) != nil
        let unanswered = lmPool.reclaim(from: id) + diffusionPool.reclaim(from: id)
        let what =
            switch (drained, unanswered) {
            case (false, _): "is down"
            case (true, 0): "drained and left"
            case (true, _): "left during its drain"
            }
        note(
            "\(describe(id)) \(what)" + (unanswered == 0 ? "" : "; re-sending its \(unanswered) unanswered request(s)")
        )
        slowStages.remove(id)
        if pipeline.chain.contains(id) { breakPipeline("\(describe(id)) left the pipeline") }
        if let peer = info[id]?.peer { peers[peer] = nil }
        info[id] = nil
        trace.forget(worker: id.value)
    }

    func breakPipeline(_ reason: String) {
        scheduler.suspend()
        batchClock.reset()
        if pipeline.opening || pipeline.entryOpen { emit(.closePipeline) }
        pipeline = PipelineState()
        broken = (now, reason)
        note("\(reason); \(jobs.count) job(s) wait for a replacement to replay onto")
    }

    /// Forms a pipeline when none is in use, and hands queued head work to the pools.
    func membershipChanged() {
        if pipeline.chain.isEmpty {
            let stages = usableStages
            // A stage that let a micro-batch pass its deadline is used only when no chain can do without it.
            let healthy = stages.filter { !slowStages.contains($0.id) }
            if let chain = PipelineChain.find(healthy, layerCount: planner.layerCount)
                ?? PipelineChain.find(stages, layerCount: planner.layerCount)
            {
                pipeline.chain = chain
                pipeline.awaitingRoute = Set(chain)
                // Fresh tokens for every pipeline: each stage admits only what carries its own, which only its
                // upstream (the previous stage, or this coordinator for the first) is given.
                var generator = SystemRandomNumberGenerator()
                let tokens = chain.map { _ in UInt64.random(in: 1...UInt64.max, using: &generator) }
                pipeline.entryToken = tokens[0]
                for (index, id) in chain.enumerated() {
                    let last = index + 1 == chain.count
                    let next = last ? nil : info[chain[index + 1]]!.registration.dataEndpoint
                    let route = StageControl.route(
                        next: next,
                        admits: tokens[index],
                        stamps: last ? 0 : tokens[index + 1]
                    )
                    sendToWorker(id, route.message)
                }
            }
        }
        dispatch()
    }

    /// The stages a pipeline can be formed of: alive, with their data socket connected.
    var usableStages: [(id: WorkerID, layers: Range<Int>)] {
        desk.machine.members.values.compactMap { member -> (id: WorkerID, layers: Range<Int>)? in
            guard case .stage(let layers) = member.role, member.status == .alive, info[member.id]?.peer != nil
            else { return nil }
            return (member.id, layers)
        }
    }

    /// Once every stage of the chain has its route, the shell connects to the first stage.
    private func openPipelineIfRouted() {
        guard !pipeline.chain.isEmpty, pipeline.awaitingRoute.isEmpty, !pipeline.opening,
            let first = info[pipeline.chain[0]]
        else { return }
        pipeline.opening = true
        emit(.openPipeline(endpoint: first.registration.dataEndpoint))
    }

    /// The pipeline is usable: a paused scheduler replays onto it, and queued jobs start.
    func startPipeline() {
        guard pipeline.opening, !pipeline.entryOpen else { return }
        pipeline.entryOpen = true
        note("pipeline ready: " + pipeline.chain.map(describe).joined(separator: " -> "))
        if scheduler.paused {
            note("replaying \(scheduler.activeJobs) job(s) onto the new pipeline")
            apply(scheduler.replay())
        }
        broken = nil
        apply(scheduler.setPipelineDepth(depth))
        startWaitingJobs()
    }
}
