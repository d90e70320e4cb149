import ClusterProtocol
import Generation
import Membership
import Tensor
import TestSupport
import Testing
import Transport
import Wire

@testable import Coordinator

/// The coordinator's job table and membership in one process, with no sockets: every event the shell can deliver
/// (a job submitted, a stage output, a head reply, a worker lost, a cancel, a fetch, a journal replay) and what the
/// core answers.
@Suite struct CoordinatorCoreTests {
    let planner = CoreHarness.planner
    var token: Int { try! planner.tokenizer.encode(" ok").first! }

    /// Runs the job's current micro-batch through the stage and answers its token request with `token`.
    func step(_ h: CoreHarness, _ stage: CoreHarness.Worker, _ lm: CoreHarness.Worker, token: Int) throws {
        try h.output(from: stage, for: try h.lastBatch())
        let request = try h.lastTokenRequest(to: lm)
        try h.fromWorker(lm.data, try TokenReply(requestID: request.requestID, tokens: [token]).message())
    }

    @Test func aTextJobGoesFromSubmitThroughTheStageAndTheLMHeadToItsClient() throws {
        let h = CoreHarness()
        try h.submitText("alice", maxTokens: 2)
        #expect(try h.envelopes(toClient: "alice").map(\.kind) == [MessageKind.accepted.rawValue])
        #expect(h.core.status().queued == 1 && !h.core.status().ready)

        let lm = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        #expect(h.pipelineOpens == 1)
        let first = try h.lastBatch()
        guard case .inputs(let inputs) = first.input else { throw Failure("the first stage gets token ids") }
        #expect(inputs == (try planner.promptIDs("hi")).map(StageInput.token))
        #expect(first.slices.map(\.start) == [0] && first.slices.map(\.count) == [inputs.count])

        try h.output(from: stage, for: first)
        let request = try h.lastTokenRequest(to: lm)
        #expect(request.rows.count == 1 && request.rows[0].counter == 0 && request.rows[0].mask == planner.textMask)
        try h.fromWorker(lm.data, try TokenReply(requestID: request.requestID, tokens: [token]).message())
        let second = try h.lastBatch()
        guard case .inputs(let next) = second.input else { throw Failure("the first stage gets token ids") }
        #expect(next == [.token(token)] && second.slices.map(\.start) == [inputs.count])
        try step(h, stage, lm, token: token)

        let replies = try h.envelopes(toClient: "alice")
        let text = MessageKind.text.rawValue
        #expect(replies.map(\.kind) == [MessageKind.accepted.rawValue, text, text, MessageKind.finished.rawValue])
        let streamed = replies.map(\.answerText).joined()
        #expect(streamed == (try planner.tokenizer.decode([token, token])))
        #expect(replies.filter { $0.kind == text }.map(\.progressDone) == [1, 2])
        let release = try #require(try h.pipelineMessages().last)
        #expect(
            release.envelope.kind == MessageKind.release.rawValue
                && release.envelope.sequenceIDs == first.slices.map(\.sequenceID)
        )
        let status = h.core.status()
        #expect(status.completedJobs == 1 && status.jobs.isEmpty && status.ready == false)  // no diffusion worker
    }

    @Test func badClientMessagesAreRefusedByNameAndCounted() throws {
        var options = CoordinatorService.Options()
        options.maxJobs = 1
        let h = CoreHarness(options: options)
        try h.fromClient("c", raw: [try ZMQMessage(bytes: [0xFF, 0x01])])
        try h.fromClient("c", Envelope(kind: MessageKind.submit.rawValue))
        var bad = JobSpec(mode: .text, prompt: "x", maxTokens: 1)
        bad.topP = 0
        try h.fromClient("c", Envelope(kind: MessageKind.submit.rawValue, job: bad))
        try h.fromClient("c", Envelope(kind: 77))
        try h.fromClient("c", Envelope(kind: MessageKind.cancel.rawValue, jobID: 5))
        try h.fromClient("c", Envelope(kind: MessageKind.fetch.rawValue, jobID: 5))
        try h.submitText("c")
        try h.submitText("c")
        let replies = try h.envelopes(toClient: "c")
        let errors = replies.filter { $0.kind == Envelope.failureKind }.map(\.error)
        #expect(errors.count == 7, "\(errors)")
        #expect(errors[0].contains("not a valid") || errors[0].contains("envelope"))
        #expect(errors[1].contains("carries no job") && errors[2].contains("top_p") && errors[3].contains("kind 77"))
        #expect(errors[4].contains("no job 5") && errors[5].contains("no job 5"))
        #expect(errors[6].contains("the cluster is full"))
        #expect(h.core.status().rejectedClientMessages == 7 && h.core.status().jobs.count == 1)
    }

    @Test func aClientCancelsOnlyItsOwnJobAndAnotherClientFetchesARunningOne() throws {
        let h = CoreHarness()
        let lm = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        try h.submitText("alice", maxTokens: 3)
        try h.submitText("bob", maxTokens: 3)
        let alice = try #require(try h.envelopes(toClient: "alice").first?.jobID)
        let bob = try #require(try h.envelopes(toClient: "bob").first?.jobID)
        let aliceBatch = try h.lastBatch()

        // Bob cannot cancel Alice's job, but can cancel his own.
        try h.fromClient("bob", Envelope(kind: MessageKind.cancel.rawValue, jobID: alice))
        #expect(try h.envelopes(toClient: "bob").last?.error.contains("no job \(alice)") == true)
        try h.fromClient("bob", Envelope(kind: MessageKind.cancel.rawValue, jobID: bob))
        #expect(try h.envelopes(toClient: "bob").last?.error.contains("cancelled by its client") == true)
        #expect(try h.pipelineMessages().last?.envelope.kind == MessageKind.release.rawValue)

        // A fetch attaches a new client to Alice's running job: it gets the text so far and the rest.
        try h.output(from: stage, for: aliceBatch)
        try h.fromWorker(
            lm.data,
            try TokenReply(requestID: try h.lastTokenRequest(to: lm).requestID, tokens: [token]).message()
        )
        try h.fromClient("carol", Envelope(kind: MessageKind.fetch.rawValue, jobID: alice))
        let attached = try h.envelopes(toClient: "carol")
        #expect(attached.map(\.kind) == [MessageKind.accepted.rawValue, MessageKind.text.rawValue])
        #expect(attached[1].answerText == (try planner.tokenizer.decode([token])))
        try step(h, stage, lm, token: token)
        try step(h, stage, lm, token: token)
        #expect(try h.envelopes(toClient: "carol").last?.kind == MessageKind.finished.rawValue)
        #expect(h.core.status().completedJobs == 1 && h.core.status().cancelledJobs == 1)
        #expect(h.core.status().failedJobs == 0)
    }

    /// A one-token text job whose token request LM-head worker "lm-a" holds, and "lm-b", which joined after.
    private func aRequestHeldByOneOfTwoLMHeads() throws -> (
        h: CoreHarness, stage: CoreHarness.Worker, holder: CoreHarness.Worker, other: CoreHarness.Worker,
        request: TokenRequest
    ) {
        let h = CoreHarness()
        let holder = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        try h.submitText("alice", maxTokens: 1)
        try h.output(from: stage, for: try h.lastBatch())
        let request = try h.lastTokenRequest(to: holder)
        return (h, stage, holder, try h.join("lm-b", role: .lmHead), request)
    }

    /// The request went to `other` as it was, and its answer finishes the job.
    private func expectResentAndFinished(_ h: CoreHarness, _ request: TokenRequest, to other: CoreHarness.Worker) throws
    {
        let resent = try h.lastTokenRequest(to: other)
        #expect(resent.requestID == request.requestID && resent.rows == request.rows)
        try h.fromWorker(other.data, try TokenReply(requestID: resent.requestID, tokens: [token]).message())
        #expect(try h.envelopes(toClient: "alice").last?.kind == MessageKind.finished.rawValue)
    }

    @Test func aLostLMHeadWorkersRequestIsSentToAnotherAndTheJobFinishes() throws {
        let (h, stage, first, second, request) = try aRequestHeldByOneOfTwoLMHeads()
        // The first worker goes silent; the stage and the second keep beating until it is declared down.
        for _ in 0..<12 {
            h.advance(.seconds(1))
            try h.heartbeat(stage)
            try h.heartbeat(second)
        }
        #expect(h.core.status().members.first { $0.id == first.id }?.state == "down")
        try expectResentAndFinished(h, request, to: second)
        #expect(h.log.contains { $0.contains("is down") })
    }

    @Test func aHeadWorkerThatLeavesDuringItsDrainHasItsRequestResent() throws {
        let (h, _, first, second, request) = try aRequestHeldByOneOfTwoLMHeads()
        // Stopped once, the worker drains: the coordinator confirms on the control link at once and on the data socket
        // after the last request sent there, and sends it nothing new.
        try h.fromWorker(first.control, MembershipMessage.drain(worker: first.id).message, peer: first.peer)
        #expect(try h.envelopes(to: first.control).last?.kind == MessageKind.drainAccepted.rawValue)
        #expect(try h.envelopes(to: first.data).last?.kind == MessageKind.drainAccepted.rawValue)
        // Stopped again, it leaves before answering: its request goes to the other worker at once, with no wait for a
        // down time.
        try h.fromWorker(first.control, MembershipMessage.left(worker: first.id).message, peer: first.peer)
        try expectResentAndFinished(h, request, to: second)
        #expect(h.log.contains { $0.contains("left during its drain; re-sending its 1 unanswered request(s)") })
        #expect(!h.log.contains { $0.contains("drained and left") })
    }

    @Test func aLostStageStopsThePipelineAndAReplacementGetsEverySequenceReplayed() throws {
        let h = CoreHarness()
        let lm = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        try h.submitText("alice", maxTokens: 3)
        try step(h, stage, lm, token: token)
        let inFlight = try h.lastBatch()
        for _ in 0..<11 {
            h.advance(.seconds(1))
            try h.heartbeat(lm)
        }
        #expect(h.pipelineCloses == 1 && !h.core.status().ready)
        _ = h.take()
        // The replacement gets a release of every sequence, then the whole history from position 0.
        let replacement = try h.startStage("stage-b")
        #expect(h.pipelineOpens == 1)
        let sent = try h.pipelineMessages()
        #expect(sent.first?.envelope.kind == MessageKind.release.rawValue)
        let replay = try StageBatch.parse(try #require(sent.last { $0.envelope.kind == MessageKind.forward.rawValue }))
        #expect(replay.slices.map(\.sequenceID) == inFlight.slices.map(\.sequenceID) && replay.slices[0].start == 0)
        guard case .inputs(let inputs) = replay.input else { throw Failure("token ids") }
        #expect(inputs == (try planner.promptIDs("hi")).map(StageInput.token) + [.token(token)])
        // The answer for the replayed prompt is not used twice: the job goes on from its second token.
        try h.output(from: replacement, for: replay)
        try h.fromWorker(
            lm.data,
            try TokenReply(requestID: try h.lastTokenRequest(to: lm).requestID, tokens: [token]).message()
        )
        try step(h, replacement, lm, token: token)
        let texts = try h.envelopes(toClient: "alice").filter { $0.kind == MessageKind.text.rawValue }
        #expect(texts.map(\.progressDone) == [2, 3])  // the first went out before the loss
        #expect(try h.envelopes(toClient: "alice").last?.kind == MessageKind.finished.rawValue)
    }

    @Test func aWorkersFailureReportFailsTheJobsItServedWithItsReason() throws {
        let h = CoreHarness()
        _ = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        try h.submitText("alice")
        let batch = try h.lastBatch()
        try h.fromWorker(
            stage.data,
            Envelope(kind: Envelope.failureKind, error: "out of memory", microBatch: batch.microBatch)
        )
        let failure = try #require(try h.envelopes(toClient: "alice").last)
        #expect(failure.kind == Envelope.failureKind && failure.error.contains("out of memory"))
        #expect(h.core.status().failedJobs == 1 && h.core.status().jobs.isEmpty)
        // A reply from a socket that never said hello is refused, not taken for a worker's.
        try h.fromWorker(Array("stranger".utf8), Envelope(kind: MessageKind.sampledTokens.rawValue, requestID: 1))
        #expect(try h.envelopes(to: Array("stranger".utf8)).last?.error.contains("has not said hello") == true)
    }

    @Test func aRestartedCoreRunsTheJournalsUnfinishedJobsAndServesFinishedOnes() throws {
        let folder = try ScratchFolder("core-journal")
        let journal = try JobJournal(folder: folder.path)
        let before = CoreHarness(journal: journal)
        let lm = try before.join("lm-a", role: .lmHead)
        let stage = try before.startStage()
        try before.submitText("alice", maxTokens: 1)
        try step(before, stage, lm, token: token)
        try before.submitText("bob", maxTokens: 2)
        let done = try #require(try before.envelopes(toClient: "alice").first?.jobID)
        let running = try #require(try before.envelopes(toClient: "bob").first?.jobID)

        let after = CoreHarness(journal: try JobJournal(folder: folder.path))
        after.restore()
        #expect(after.core.status().jobs.map(\.id) == [running] && after.core.status().queued == 1)
        try after.fromClient("carol", Envelope(kind: MessageKind.fetch.rawValue, jobID: done))
        let replayed = try after.envelopes(toClient: "carol")
        #expect(
            replayed.map(\.kind) == [
                MessageKind.accepted.rawValue, MessageKind.text.rawValue, MessageKind.finished.rawValue,
            ]
        )
        #expect(replayed[1].answerText == (try planner.tokenizer.decode([token])))
        try after.submitText("dave")
        #expect(try after.envelopes(toClient: "dave").first?.jobID == running + 1)
    }

    @Test func noiseIsRefusedUnlessTheJobCanUseItsShape() throws {
        let h = CoreHarness()
        let (patches, latent) = (planner.patches, planner.latentDim)
        func submit(_ name: String, _ spec: JobSpec, noise shape: [Int]) throws -> Envelope? {
            let values = [Float](repeating: 0.5, count: shape.reduce(1, *))
            let noise = try NoiseTensor(shape: shape, values: values)
            let message = try ClientMessage.submit(spec, picture: nil, noise: noise).message()
            try h.fromClient(name, message.envelope, tensors: message.tensors)
            return try h.envelopes(toClient: name).last
        }
        let image = JobSpec(mode: .textToImage, prompt: "a cat", maxTokens: 0, steps: 2)
        let story = JobSpec(mode: .interleaved, prompt: "a story", maxTokens: 2 * (patches + 2) + 1, steps: 2)
        let text = JobSpec(mode: .text, prompt: "hi", maxTokens: 2)
        let refusals = [
            try submit("a", image, noise: [2, patches, latent]),  // one image only
            try submit("b", image, noise: [1, patches - 1, latent]),
            try submit("c", story, noise: [3, patches, latent]),  // the budget fits two images
            try submit("d", text, noise: [1, patches, latent]),
        ]
        for refusal in refusals {
            #expect(
                refusal?.kind == Envelope.failureKind && refusal?.error.contains("noise") == true,
                "\(String(describing: refusal))"
            )
        }
        #expect(refusals[0]?.error.contains("1 to 1 image(s)") == true && refusals[2]?.error.contains("1 to 2") == true)
        #expect(try submit("e", image, noise: [1, patches, latent])?.kind == MessageKind.accepted.rawValue)
        #expect(try submit("f", story, noise: [2, patches, latent])?.kind == MessageKind.accepted.rawValue)
        #expect(h.core.status().jobs.count == 2)
    }

    @Test func aPromptTooLongToFitTheContextIsRefusedBeforeItIsTokenized() throws {
        let h = CoreHarness()
        let long = String(repeating: "a", count: planner.maxPromptBytes + 1)
        try h.submitText("a", prompt: long)
        let refusal = try #require(try h.envelopes(toClient: "a").last)
        #expect(refusal.kind == Envelope.failureKind && refusal.error.contains("at most \(planner.maxPromptBytes)"))
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
