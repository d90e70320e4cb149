import ClusterProtocol
import Generation
import Membership
import Tensor
import Testing
import Transport
import Wire

@testable import Coordinator

/// What each key may do, checked in the coordinator's core with the identities a Curve cluster's ZAP handler proves:
/// a worker's id and slot belong to the key that registered it, a client sees, fetches and cancels only its own jobs
/// (an admin key all of them), and the pipeline admits only what carries the route tokens the coordinator issued.
@Suite struct KeyRoleTests {
    let planner = CoreHarness.planner
    let workerKey = PeerIdentity(role: .worker, publicKey: String(repeating: "w", count: 40))
    let rogueKey = PeerIdentity(role: .worker, publicKey: String(repeating: "r", count: 40))
    let alice = PeerIdentity(role: .client, publicKey: String(repeating: "a", count: 40))
    let bob = PeerIdentity(role: .client, publicKey: String(repeating: "b", count: 40))
    let admin = PeerIdentity(role: .admin, publicKey: String(repeating: "m", count: 40))

    @Test func aWorkersSlotAndIdBelongToTheKeyThatRegisteredIt() throws {
        let h = CoreHarness()
        let lm = try h.join("lm-a", role: .lmHead, peer: workerKey)
        // Another key takes neither the slot (even with a higher incarnation) nor the id.
        let rogue = CoreHarness.Worker(key: "lm-a", incarnation: 2, id: 0, peer: rogueKey)
        let takeover = Registration(key: "lm-a", incarnation: 2, role: .lmHead)
        try h.fromWorker(
            rogue.control,
            Envelope(kind: MessageKind.register.rawValue, registration: takeover),
            peer: rogueKey
        )
        #expect(try h.envelopes(to: rogue.control).last?.error.contains("another Curve key") == true)
        try h.fromWorker(
            lm.control,
            Envelope(kind: MessageKind.heartbeat.rawValue, workerID: lm.id),
            peer: rogueKey
        )
        #expect(try h.envelopes(to: lm.control).last?.kind == MessageKind.refused.rawValue)
        // Even with the same key, a socket whose routing id lacks the worker's link secret cannot say hello as it, so
        // it can never be handed the worker's traffic.
        var guessed = lm
        guessed.secret = 1
        try h.fromWorker(guessed.data, Envelope(kind: MessageKind.hello.rawValue, workerID: lm.id), peer: workerKey)
        #expect(try h.envelopes(to: guessed.data).last?.error.contains("unknown worker") == true)
        // A reply on the worker's data routing id from another key is refused, not taken as the worker's.
        try h.submitText("alice", maxTokens: 1)
        let stage = try h.startStage()
        try h.output(from: stage, for: try h.lastBatch())
        let request = try h.lastTokenRequest(to: lm)
        let token = try planner.tokenizer.encode(" ok").first!
        let forged = try TokenReply(requestID: request.requestID, tokens: [token]).message()
        try h.fromWorker(lm.data, forged, peer: rogueKey)
        #expect(try h.envelopes(toClient: "alice").last?.kind == MessageKind.accepted.rawValue)
        #expect(h.core.status().members.first { $0.id == lm.id }?.state == "alive")
        try h.fromWorker(lm.data, forged, peer: workerKey)
        #expect(try h.envelopes(toClient: "alice").last?.kind == MessageKind.finished.rawValue)
    }

    @Test func oneKeysRegistrationFloodDoesNotHoldBackAnothersWorkers() throws {
        var desk = MembershipDesk(machine: MembershipMachine(), registrationsPerSecond: 1, registrationBurst: 4)
        let now = ContinuousClock.now
        func register(_ key: String, as peer: PeerIdentity) -> Bool {
            let message = MembershipMessage.register(Registration(key: key, incarnation: 1, role: .lmHead)).message
            return desk.handle(message, from: peer, at: now).reply?.envelope.kind == MessageKind.registered.rawValue
        }
        let flood = (0..<10).map { register("fake-\($0)", as: rogueKey) }
        #expect(flood == Array(repeating: true, count: 4) + Array(repeating: false, count: 6))
        #expect(register("lm-real", as: workerKey))
    }

    @Test func anIncarnationAheadOfTheClockIsRefused() throws {
        let h = CoreHarness()
        let worker = CoreHarness.Worker(key: "lm-b", incarnation: .max, id: 0, peer: workerKey)
        let registration = Registration(key: "lm-b", incarnation: .max, role: .lmHead)
        try h.fromWorker(
            worker.control,
            Envelope(kind: MessageKind.register.rawValue, registration: registration),
            peer: workerKey
        )
        #expect(try h.envelopes(to: worker.control).last?.error.contains("ahead of the coordinator's clock") == true)
        #expect(h.core.status().members.isEmpty)
    }

    @Test func aClientSeesFetchesAndCancelsItsOwnJobsOnlyAndAnAdminAll() throws {
        let h = CoreHarness()
        let lm = try h.join("lm-a", role: .lmHead)
        let stage = try h.startStage()
        let job = JobSpec(mode: .text, prompt: "hi", maxTokens: 1)
        try h.fromClient("alice-1", Envelope(kind: MessageKind.submit.rawValue, job: job), peer: alice)
        let id = try #require(try h.envelopes(toClient: "alice-1").first?.jobID)
        #expect(h.core.status(for: alice).jobs.map(\.id) == [id])
        #expect(h.core.status(for: bob).jobs.isEmpty && h.core.status(for: admin).jobs.map(\.id) == [id])

        // Bob's fetch and cancel of Alice's job find no such job; she and the admin can follow it, from any
        // connection, and the submitter's stream is not taken from it.
        try h.fromClient("bob-1", Envelope(kind: MessageKind.fetch.rawValue, jobID: id), peer: bob)
        try h.fromClient("bob-1", Envelope(kind: MessageKind.cancel.rawValue, jobID: id), peer: bob)
        #expect(try h.envelopes(toClient: "bob-1").map(\.error).allSatisfy { $0.contains("no job \(id)") })
        try h.fromClient("alice-2", Envelope(kind: MessageKind.fetch.rawValue, jobID: id), peer: alice)
        try h.fromClient("admin-1", Envelope(kind: MessageKind.fetch.rawValue, jobID: id), peer: admin)
        try h.output(from: stage, for: try h.lastBatch())
        let token = try planner.tokenizer.encode(" ok").first!
        let request = try h.lastTokenRequest(to: lm)
        try h.fromWorker(lm.data, try TokenReply(requestID: request.requestID, tokens: [token]).message())
        for connection in ["alice-1", "alice-2", "admin-1"] {
            #expect(try h.envelopes(toClient: connection).last?.kind == MessageKind.finished.rawValue)
        }
        #expect(h.core.status().completedJobs == 1)

        // The admin cancels a job of Bob's from its own connection.
        try h.fromClient("bob-2", Envelope(kind: MessageKind.submit.rawValue, job: job), peer: bob)
        let bobs = try #require(try h.envelopes(toClient: "bob-2").first?.jobID)
        try h.fromClient("admin-2", Envelope(kind: MessageKind.cancel.rawValue, jobID: bobs), peer: admin)
        #expect(try h.envelopes(toClient: "bob-2").last?.error.contains("cancelled") == true)
    }

    func lastRoute(_ h: CoreHarness, _ stage: CoreHarness.Worker) throws -> StageControl {
        let envelope = try #require(try h.envelopes(to: stage.data).last)
        return try #require(StageControl(envelope))
    }

    @Test func everyPipelineHasFreshRouteTokensThatChainTheStages() throws {
        let h = CoreHarness()
        _ = try h.join("lm-a", role: .lmHead)
        let half = planner.layerCount / 2
        let first = try h.join("stage-a", role: .stage, layers: 0..<half)
        let second = try h.join("stage-b", role: .stage, layers: half..<planner.layerCount)
        let routeA = try lastRoute(h, first)
        let routeB = try lastRoute(h, second)
        guard case .route(let nextA, let admitsA, let stampsA) = routeA, case .route(nil, let admitsB, 0) = routeB
        else { throw CoordinatorCoreTests.Failure("both stages get a route") }
        #expect(nextA == "tcp://stage-b:5601" && admitsA != 0 && admitsB != 0 && stampsA == admitsB)
        for stage in [first, second] {
            try h.fromWorker(stage.data, Envelope(kind: MessageKind.routed.rawValue))
        }
        try h.submitText("alice", maxTokens: 1)
        #expect(try h.lastBatch().routeToken == admitsA)

        // A new pipeline (the second stage replaced) gets new tokens.
        for _ in 0..<6 {
            h.advance(.seconds(2))
            try h.heartbeat(first)
        }
        let replacement = try h.join("stage-c", role: .stage, layers: half..<planner.layerCount)
        let again = try lastRoute(h, first)
        guard case .route(_, let admitsAgain, let stampsAgain) = again else {
            throw CoordinatorCoreTests.Failure("a new route")
        }
        let routeC = try lastRoute(h, replacement)
        guard case .route(nil, let admitsC, 0) = routeC else {
            throw CoordinatorCoreTests.Failure("the replacement gets a route")
        }
        #expect(admitsAgain != admitsA && stampsAgain == admitsC && admitsC != admitsB)
    }
}
