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

    /// The next job to start is the oldest of the client running the fewest: a client that queued a burst does not
    /// hold another's job behind it. And status shows, per stage, what is held, reserved and free.
    @Test func theQueueServesTheClientRunningFewestFirst() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        let token = try planner.tokenizer.encode(" ok").first!
        let lm = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        let perJob = try planner.promptIDs("hi").count + 4
        try h.heartbeat(stage, load: WorkerLoad(kvPositions: 7, kvBudget: UInt64(2 * perJob)))
        for _ in 0..<3 { try h.submitText("burst", maxTokens: 4) }
        try h.submitText("other", maxTokens: 4)
        let ids = try ["burst", "other"].map { client in
            try h.envelopes(toClient: client).filter { $0.kind == MessageKind.accepted.rawValue }.map(\.jobID)
        }
        #expect(h.core.status().jobs.map(\.phase) == ["running", "running", "queued", "queued"])
        let row = try #require(h.core.status().members.first { $0.id == stage.id })
        #expect(row.kvReserved == UInt64(2 * perJob) && row.kvPositions == 7 && row.kvBudget == UInt64(2 * perJob))

        // The first burst job ends: the other client's job starts before the burst's third, though it came later.
        while try h.envelopes(toClient: "burst").filter({ $0.kind == MessageKind.finished.rawValue }).isEmpty {
            try h.output(from: stage, for: try h.lastBatch())
            let request = try h.lastTokenRequest(to: lm)
            try h.fromWorker(
                lm.data,
                try TokenReply(requestID: request.requestID, tokens: request.rows.map { _ in token }).message()
            )
        }
        let phases = Dictionary(uniqueKeysWithValues: h.core.status().jobs.map { ($0.id, $0.phase) })
        #expect(phases[ids[1][0]] == "running" && phases[ids[0][2]] == "queued")
    }

    /// An image job's reservation ends with its sequences, before its image is decoded.
    @Test func anImageJobsKVIsFreeWhileItsImageIsDecoded() throws {
        let h = CoreHarness()
        let planner = CoreHarness.planner
        _ = try h.join("lm-a", role: .lmHead)
        let diffusion = try h.join("diffusion-a", role: .diffusionHead)
        let stage = try h.startStage()
        try h.heartbeat(stage, load: WorkerLoad(kvBudget: 100_000))
        let spec = JobSpec(mode: .textToImage, prompt: "a red square", maxTokens: 0, steps: 2)
        try h.fromClient("alice", Envelope(kind: MessageKind.submit.rawValue, job: spec))
        #expect(h.core.kvReserved > 0)
        var answered: Set<UInt64> = []
        while h.core.jobs.values.first?.phase == .running {
            let batch = try h.lastBatch()
            if answered.insert(batch.microBatch).inserted { try h.output(from: stage, for: batch) }
            for case (let id, .patches(let request, _, _, _)) in h.core.diffusionPool.payloads {
                let latents = request.patches.map { _ in [Float](repeating: 0.1, count: planner.latentDim) }
                try h.fromWorker(diffusion.data, try PatchReply(requestID: id, latents: latents).message())
            }
        }
        #expect(h.core.jobs.values.first?.phase == .decoding)
        #expect(h.core.kvReserved == 0 && h.core.reservedKV.isEmpty)
    }

    /// The coordinator's memory is bounded by what accepted jobs may hold: jobs (`maxJobs`) and their pictures and
    /// noise (`maxHeldInputBytes`); a job beyond is refused as full, with the numbers, until others end.
    @Test func picturesAndNoiseHeldByAcceptedJobsAreBounded() throws {
        let planner = CoreHarness.planner
        let noiseBytes = planner.patches * planner.latentDim * 4
        var options = CoordinatorService.Options()
        options.maxHeldInputBytes = 2 * noiseBytes + noiseBytes / 2
        let h = CoreHarness(options: options)
        func submit(_ client: String) throws -> Envelope? {
            let spec = JobSpec(mode: .textToImage, prompt: "a cat", maxTokens: 0, steps: 2)
            let values = [Float](repeating: 0.5, count: planner.patches * planner.latentDim)
            let noise = try NoiseTensor(shape: [1, planner.patches, planner.latentDim], values: values)
            let message = try ClientMessage.submit(spec, picture: nil, noise: noise).message()
            try h.fromClient(client, message.envelope, tensors: message.tensors)
            return try h.envelopes(toClient: client).last
        }
        let first = try #require(try submit("a"))
        #expect(first.kind == MessageKind.accepted.rawValue)
        #expect(try submit("b")?.kind == MessageKind.accepted.rawValue)
        let refused = try #require(try submit("c"))
        #expect(refused.kind == Envelope.failureKind && refused.error.contains("pictures and noise"))
        #expect(refused.error.contains("\(2 * noiseBytes >> 10) KiB"))
        // A text job brings neither: accepted.
        try h.submitText("d")
        #expect(try h.envelopes(toClient: "d").last?.kind == MessageKind.accepted.rawValue)
        // One ends (cancelled): the next image job with noise fits again.
        try h.fromClient("a", try ClientMessage.cancel(job: first.jobID).message().envelope)
        #expect(try submit("e")?.kind == MessageKind.accepted.rawValue)
    }
}
