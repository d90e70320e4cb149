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
}
