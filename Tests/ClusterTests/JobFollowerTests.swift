import ClusterProtocol
import Testing

@testable import ClusterClient

/// After a re-attachment a journaled coordinator streams the job's text from the start again (a rerun may cut it into
/// other pieces): the follower passes on only what the client has not printed yet.
@Suite struct JobFollowerTests {
    @Test func textAlreadyPassedOnIsNotRepeatedWhateverThePieces() {
        var skip = "Hello there".count
        let pieces = ["Hel", "lo th", "ere, frie", "nd"].map { ClientMessage.text(job: 1, piece: $0, tokens: 0) }
        let passed = pieces.compactMap { message -> String? in
            guard case .text(_, let piece, _) = JobFollower.unseen(message, skipping: &skip) else { return nil }
            return piece
        }
        #expect(passed == [", frie", "nd"] && skip == 0)
        // Other messages pass untouched.
        var none = 3
        guard case .finished(1, "x") = JobFollower.unseen(.finished(job: 1, rest: "x"), skipping: &none) else {
            Issue.record("a finish was changed")
            return
        }
        #expect(none == 3)
    }
}
