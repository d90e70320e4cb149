import ClusterProtocol
import Testing
import Wire

@testable import Coordinator

/// A submit sent again with the same submission id is the job it already became: nothing is sent twice to the
/// connection that follows it, another connection of the same key attaches to it, and another key's id is its own.
@Suite struct SubmissionTests {
    @Test func aRepeatedSubmissionIsOneJob() throws {
        let h = CoreHarness()
        var spec = JobSpec(mode: .text, prompt: "hi", maxTokens: 2)
        spec.submission = 0xABCD
        let alice = PeerIdentity(role: .client, publicKey: "alice-key")
        try h.fromClient("a1", Envelope(kind: MessageKind.submit.rawValue, job: spec), peer: alice)
        try h.fromClient("a1", Envelope(kind: MessageKind.submit.rawValue, job: spec), peer: alice)
        let first = try h.envelopes(toClient: "a1")
        #expect(first.map(\.kind) == [MessageKind.accepted.rawValue])  // the repeat on the same connection: nothing
        // The same submission from another connection of the same key (a client after a coordinator restart).
        try h.fromClient("a2", Envelope(kind: MessageKind.submit.rawValue, job: spec), peer: alice)
        let attached = try #require(try h.envelopes(toClient: "a2").first)
        #expect(attached.kind == MessageKind.accepted.rawValue && attached.jobID == first[0].jobID)
        #expect(h.core.jobs.count == 1 && h.core.jobs[first[0].jobID]?.watchers.count == 2)
        // Another key with the same id, and the same key with another id: new jobs.
        try h.fromClient(
            "b",
            Envelope(kind: MessageKind.submit.rawValue, job: spec),
            peer: PeerIdentity(role: .client, publicKey: "bob-key")
        )
        spec.submission = 0xABCE
        try h.fromClient("a1", Envelope(kind: MessageKind.submit.rawValue, job: spec), peer: alice)
        #expect(h.core.jobs.count == 3)
    }

    @Test func theTableKeepsTheNewestSubmissionsOnly() {
        var table = Submissions(capacity: 3)
        for job in 1...10 { table.record(owner: "k", submission: UInt64(job), job: UInt64(job)) }
        #expect(table.count == 3)
        #expect(table.job(owner: "k", submission: 7) == nil && table.job(owner: "k", submission: 8) == 8)
        #expect(table.job(owner: "other", submission: 9) == nil && table.job(owner: "k", submission: 0) == nil)
        table.record(owner: "k", submission: 0, job: 11)  // no id: not recorded
        #expect(table.count == 3)
    }
}
