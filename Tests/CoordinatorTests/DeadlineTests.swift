import ClusterProtocol
import Generation
import Testing
import Transport
import Wire

@testable import Coordinator

/// An LM-head worker that heartbeats but never answers (a stuck compute thread) does not hold a job until it is
/// declared down: its request passes the pool's deadline (twice the service time learnt so far, at least 250 ms), goes
/// to the other worker at once, and the stuck worker's late answer is dropped.
@Suite struct DeadlineTests {
    @Test func aStuckButHeartbeatingLMHeadDelaysAJobByItsDeadlineOnly() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        let token = try planner.tokenizer.encode(" ok").first!
        let a = try h.join("lm-a", role: .lmHead)
        let b = try h.join("lm-b", role: .lmHead)
        let stage = try h.startStage()
        try h.submitText("alice", maxTokens: 3)

        /// Which of the two holds the job's current token request.
        func current() throws -> (worker: CoreHarness.Worker, request: TokenRequest) {
            let requests = try [a, b].compactMap { worker -> (CoreHarness.Worker, TokenRequest)? in
                let sent = try h.messages(to: worker.data).filter {
                    $0.envelope.kind == MessageKind.sampleTokens.rawValue
                }
                return try sent.last.map { (worker, try TokenRequest.parse($0, hiddenSize: planner.hiddenSize)) }
            }
            return try #require(requests.max { $0.1.requestID < $1.1.requestID })
        }

        // The first token is answered in 40 ms: the pool learns its service time.
        try h.output(from: stage, for: try h.lastBatch())
        let first = try current()
        h.now += .milliseconds(40)
        try h.fromWorker(
            first.worker.data,
            try TokenReply(requestID: first.request.requestID, tokens: [token]).message()
        )
        // The second request's holder never answers, though both keep heartbeating.
        try h.output(from: stage, for: try h.lastBatch())
        let stuck = try current()
        for _ in 0..<2 {
            h.advance(.milliseconds(200))
            try h.heartbeat(a)
            try h.heartbeat(b)
        }
        let resent = try current()
        #expect(resent.request.requestID == stuck.request.requestID && resent.worker.key != stuck.worker.key)
        #expect(h.log.contains { $0.contains("passed its deadline of 0.25") })
        try h.fromWorker(
            resent.worker.data,
            try TokenReply(requestID: resent.request.requestID, tokens: [token]).message()
        )
        // The stuck worker's late answer finds the request answered: refused, and the job unaffected.
        let late = try TokenReply(requestID: stuck.request.requestID, tokens: [token + 1]).message()
        try h.fromWorker(stuck.worker.data, late)
        #expect(try h.envelopes(to: stuck.worker.data).last?.kind == Envelope.failureKind)
        // A failure report about that request from the stuck worker (it does not hold it any more) changes nothing.
        try h.fromWorker(
            stuck.worker.data,
            Envelope.failure(about: late.envelope, error: CoordinatorCoreTests.Failure("stuck"))
        )
        try h.output(from: stage, for: try h.lastBatch())
        let third = try current()
        #expect(third.worker.key != stuck.worker.key)  // no new work for the slow worker until it answers
        try h.fromWorker(
            third.worker.data,
            try TokenReply(requestID: third.request.requestID, tokens: [token]).message()
        )
        let replies = try h.envelopes(toClient: "alice")
        #expect(replies.last?.kind == MessageKind.finished.rawValue)
        #expect(replies.map(\.answerText).joined() == (try planner.tokenizer.decode([token, token, token])))
    }

    /// The same for the diffusion pool, whose deadline scales with a request's DDIM steps: the time per step learnt
    /// from the first answer (200 ms for 10 steps: 20 ms a step), three times that per step of the next request (600
    /// ms) at least 1 s.
    @Test func aStuckButHeartbeatingDiffusionWorkerLosesItsPatchRequestAtItsDeadline() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        _ = try h.join("lm-a", role: .lmHead)
        let a = try h.join("diffusion-a", role: .diffusionHead)
        let b = try h.join("diffusion-b", role: .diffusionHead)
        let stage = try h.startStage()
        try h.fromClient(
            "alice",
            Envelope(
                kind: MessageKind.submit.rawValue,
                job: JobSpec(mode: .textToImage, prompt: "a red square", maxTokens: 0, steps: 10)
            )
        )

        /// The newest patch request sent to either worker.
        func current() throws -> (worker: CoreHarness.Worker, request: PatchRequest) {
            let sent = try [a, b].compactMap { worker -> (CoreHarness.Worker, PatchRequest)? in
                let message = try h.messages(to: worker.data).last {
                    $0.envelope.kind == MessageKind.samplePatches.rawValue
                }
                return try message.map {
                    (worker, try PatchRequest.parse($0, hiddenSize: planner.hiddenSize, latentDim: planner.latentDim))
                }
            }
            return try #require(sent.max { $0.1.requestID < $1.1.requestID })
        }
        func answer(_ worker: CoreHarness.Worker, _ request: PatchRequest) throws {
            let latents = request.patches.map { _ in [Float](repeating: 0.1, count: planner.latentDim) }
            try h.fromWorker(worker.data, try PatchReply(requestID: request.requestID, latents: latents).message())
        }

        // The prompt's last state goes to the pool; the first patch comes back in 200 ms.
        try h.output(from: stage, for: try h.lastBatch())
        let first = try current()
        #expect(first.request.patches.allSatisfy { $0.steps == 10 })
        h.now += .milliseconds(200)
        try answer(first.worker, first.request)
        // The next patch's holder goes quiet, while both heartbeat: after 1 s (the floor) it goes to the other.
        try h.output(from: stage, for: try h.lastBatch())
        let stuck = try current()
        for _ in 0..<4 {
            h.advance(.milliseconds(200))
            try h.heartbeat(a)
            try h.heartbeat(b)
        }
        #expect(try current().request.requestID == stuck.request.requestID)
        #expect(try current().worker.key == stuck.worker.key)  // 800 ms: not yet
        h.advance(.milliseconds(300))
        let resent = try current()
        #expect(resent.request.requestID == stuck.request.requestID && resent.worker.key != stuck.worker.key)
        #expect(h.log.contains { $0.contains("diffusion request \(stuck.request.requestID) passed its deadline of 1") })
        try answer(resent.worker, resent.request)
        // The late answer is refused; the job goes on without the stuck worker.
        try answer(stuck.worker, stuck.request)
        #expect(try h.envelopes(to: stuck.worker.data).last?.kind == Envelope.failureKind)
        try h.output(from: stage, for: try h.lastBatch())
        #expect(try current().worker.key != stuck.worker.key)
        #expect(try h.envelopes(toClient: "alice").contains { $0.kind == MessageKind.patches.rawValue })
    }

    /// A stage that heartbeats but never runs its micro-batch: once the micro-batch passes its deadline (three times
    /// the pipeline's time, at least 2 s) and a heartbeat sent after it still does not report it, the pipeline is
    /// re-formed on a spare stage and the job replayed there; without a spare the pipeline waits and says why.
    @Test func aStuckButHeartbeatingStageIsReplacedByASpareAtItsMicroBatchsDeadline() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        let token = try planner.tokenizer.encode(" ok").first!
        let lm = try h.join("lm-a", role: .lmHead)
        let stuck = try h.startStage("stage-a")
        try h.submitText("alice", maxTokens: 2)
        func answerTokens() throws {
            let request = try h.lastTokenRequest(to: lm)
            try h.fromWorker(lm.data, try TokenReply(requestID: request.requestID, tokens: [token]).message())
        }
        // The prompt's micro-batch comes back in 100 ms: the pipeline's time is learnt.
        let prompt = try h.lastBatch()
        h.now += .milliseconds(100)
        try h.output(from: stuck, for: prompt)
        try h.heartbeat(stuck, load: WorkerLoad(finishedMicroBatch: prompt.microBatch))
        try answerTokens()
        // The next micro-batch never comes back; the stage heartbeats without it, and there is no spare yet.
        let late = try h.lastBatch()
        #expect(late.microBatch > prompt.microBatch)
        for _ in 0..<5 {
            h.advance(.milliseconds(500))
            try h.heartbeat(stuck, load: WorkerLoad(finishedMicroBatch: prompt.microBatch))
        }
        // Past the deadline now, but the last heartbeat was sent before it had passed: wait for the next.
        #expect(!h.log.contains { $0.contains("passed its deadline") })
        h.advance(.milliseconds(100))
        #expect(h.log.contains { $0.contains("micro-batch \(late.microBatch) passed its deadline of 2") })
        #expect(h.log.contains { $0.contains("no spare stage") } && h.core.pipeline.chain == [WorkerID(stuck.id)])

        // A spare joins: the next tick re-forms the pipeline on it, and the job is replayed there from position 0.
        let spare = try h.join("stage-b", role: .stage, layers: 0..<planner.layerCount)
        h.advance(.milliseconds(100))
        #expect(h.log.contains { $0.contains("re-forming the pipeline without it") })
        let route = try #require(try h.envelopes(to: spare.data).last)
        #expect(route.kind == MessageKind.route.rawValue)
        try h.fromWorker(spare.data, Envelope(kind: MessageKind.routed.rawValue))
        let replay = try h.lastBatch()
        #expect(replay.microBatch > late.microBatch && replay.slices.first?.start == 0)
        try h.output(from: spare, for: replay)
        // The stuck stage's answer, when it comes, is for a micro-batch no longer in flight: refused.
        try h.output(from: stuck, for: late)
        #expect(try h.envelopes(to: stuck.data).last?.kind == Envelope.failureKind)
        while try h.envelopes(toClient: "alice").last?.kind != MessageKind.finished.rawValue {
            if let request = Optional(try h.lastTokenRequest(to: lm)), h.core.lmPool.payloads[request.requestID] != nil
            {
                try answerTokens()
            } else {
                try h.output(from: spare, for: try h.lastBatch())
            }
        }
        let text = try h.envelopes(toClient: "alice").map(\.answerText).joined()
        #expect(text == (try planner.tokenizer.decode([token, token])))
    }

    /// A stage that went silent (killed, or its host unreachable) holding a micro-batch: a spare takes over as soon as
    /// the micro-batch is past its deadline and the stage is suspect (3 s of silence), not after the 10 s down time.
    @Test func aSilentStagesSpareTakesOverAtTheSuspectTime() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        let token = try planner.tokenizer.encode(" ok").first!
        let lm = try h.join("lm-a", role: .lmHead)
        let silent = try h.startStage("stage-a")
        let spare = try h.join("stage-b", role: .stage, layers: 0..<planner.layerCount)
        try h.submitText("alice", maxTokens: 3)
        // The prompt comes back in 100 ms (the pipeline's time is learnt); then the stage goes silent.
        h.now += .milliseconds(100)
        try h.output(from: silent, for: try h.lastBatch())
        let request = try h.lastTokenRequest(to: lm)
        try h.fromWorker(lm.data, try TokenReply(requestID: request.requestID, tokens: [token]).message())
        var waited = Duration.zero
        while !h.log.contains(where: { $0.contains("re-forming the pipeline without it") }), waited < .seconds(10) {
            h.advance(.milliseconds(200))
            try h.heartbeat(spare)
            waited += .milliseconds(200)
        }
        #expect(waited > .seconds(2) && waited <= .milliseconds(3400), "took \(waited)")
        #expect(!h.log.contains { $0.contains("is down") })
        #expect(try h.envelopes(to: spare.data).last?.kind == MessageKind.route.rawValue)
    }
}
