import ClusterProtocol
import Generation
import Testing
import Transport
import Wire

@testable import Coordinator

/// Admission by KV memory: a job starts only when the positions it can hold fit what the pipeline's smallest stage
/// budget leaves; the rest wait in arrival order and start as jobs end; a job that could never fit fails at once,
/// with the numbers.
@Suite struct KVAdmissionTests {
    @Test func jobsWaitForKVRoomAndOneThatNeverFitsIsRefused() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        let token = try planner.tokenizer.encode(" ok").first!
        let lm = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        let prompt = try planner.promptIDs("hi").count
        // Room for two jobs of 10 tokens, not three.
        let perJob = prompt + 10
        try h.heartbeat(stage, load: WorkerLoad(kvBudget: UInt64(2 * perJob + perJob / 2)))
        for client in ["a", "b", "c"] { try h.submitText(client, maxTokens: 10) }
        var status = h.core.status()
        #expect(status.kvReserved == 2 * perJob)
        #expect(status.jobs.map(\.phase) == ["running", "running", "queued"])

        // A job that could never fit fails at once, naming the numbers; the queue behind it is not held up.
        try h.submitText("d", maxTokens: 3 * perJob)
        #expect(try h.envelopes(toClient: "d").last?.error.contains("could never run") == true)

        // Job a ends (10 tokens): job c starts.
        let a = try #require(try h.envelopes(toClient: "a").first?.jobID)
        while try h.envelopes(toClient: "a").last?.kind != MessageKind.finished.rawValue {
            try h.output(from: stage, for: try h.lastBatch())
            let request = try h.lastTokenRequest(to: lm)
            try h.fromWorker(
                lm.data,
                try TokenReply(requestID: request.requestID, tokens: request.rows.map { _ in token }).message()
            )
        }
        status = h.core.status()
        #expect(!status.jobs.contains { $0.id == a })
        #expect(status.jobs.allSatisfy { $0.phase == "running" } && status.kvReserved == 2 * perJob)
    }
}
