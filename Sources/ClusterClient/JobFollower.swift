import ClusterProtocol
import Foundation
import Synchronization
import Wire

/// Follows one job to its end across a coordinator that goes silent or restarts: `submit` and `fetch` use it.
///
/// While the job's stream is quiet for `silence`, the coordinator is asked for its status. No answer means it is
/// silent (dead, or its host unreachable); an answer from another run of it (`StatusReport.instance`) means it
/// restarted and the stream is gone. Either way the follower says so and fetches the job again every second until
/// `reattach` has passed: a coordinator with a journal serves it from where it is, and the text already received is
/// not repeated. A coordinator without a journal has forgotten the job, which ends it with that reason.
public final class JobFollower: Sendable {
    public let client: ClusterClient
    public let silence: Duration
    public let reattach: Duration
    private let state = Mutex<State>(State())

    private struct State {
        var stream: JobStream?
        var job: UInt64?
    }

    public init(client: ClusterClient, silence: Duration = .seconds(3), reattach: Duration = .seconds(120)) {
        self.client = client
        self.silence = silence
        self.reattach = reattach
    }

    /// The job's id, once accepted.
    public var job: UInt64? { state.withLock { $0.job } }

    /// Asks the coordinator to cancel the job on the stream followed now.
    public func cancel() throws {
        let (stream, job) = state.withLock { ($0.stream, $0.job) }
        guard let stream, let job else { return }
        try stream.cancel(job: job)
    }

    /// What the follower saw: a message of the job (text only once, whatever the re-attachments), or a notice for
    /// the user (the coordinator went silent, came back).
    public enum Event: Sendable {
        case message(ClientMessage)
        case notice(String)
    }

    /// Reads `first` and its successors until the job finishes; `observe` sees every event. Throws `ClientError` when
    /// the job fails, or the coordinator does not come back in time, or comes back without the job.
    public func follow(_ first: JobStream, observe: (Event) -> Void) async throws -> JobOutcome {
        var outcome = JobOutcome()
        var stream = first
        var instance: UInt64?
        // After a re-attachment the stream repeats the text so far (a restarted coordinator reruns the job from its
        // journal, so it may come in other pieces): this much of it has been passed on already.
        var skip = 0
        while true {
            state.withLock { $0.stream = stream }
            // Which run of the coordinator serves this stream (learnt now: a restart may come before any silence).
            instance = try? await client.status(timeout: silence).instance  // unknown: learnt at the next check
            let events = Self.events(of: stream, tick: silence)
            var quietSince = ContinuousClock.now
            var lost: String?
            reading: for try await event in events {
                switch event {
                case .message(let message):
                    quietSince = .now
                    if case .accepted(let id, _, _) = message {
                        guard
                            state.withLock({ state in
                                defer { state.job = id }
                                return state.job == nil
                            })
                        else { continue }  // a re-attachment's acceptance: said already
                    }
                    guard let message = Self.unseen(message, skipping: &skip) else { continue }
                    observe(.message(message))
                    if outcome.add(message) { return outcome }
                case .tick:
                    // Before its acceptance the submit itself is sent again until its accept timeout (the
                    // coordinator takes the copies as one job): silence then is not a reason to give up.
                    guard job != nil, ContinuousClock.now - quietSince >= silence else { continue }
                    do {
                        let report = try await client.status(timeout: silence)
                        quietSince = .now
                        if let instance, report.instance != instance {
                            lost = "the coordinator at \(client.endpoint) restarted"
                            break reading
                        }
                        instance = report.instance
                    } catch {
                        lost = "the coordinator at \(client.endpoint) is silent"
                        break reading
                    }
                case .ended:
                    lost = "the connection to the coordinator at \(client.endpoint) closed"
                    break reading
                }
            }
            stream.close()
            guard let reason = lost else { throw ClientError.closed(client.endpoint) }
            guard let job else { throw ClientError.refused("\(reason) before it accepted the job") }
            observe(.notice("\(reason); following job \(job) again when it answers (up to \(reattach))"))
            stream = try await again(job)
            skip = outcome.streamed.count
            observe(.notice("following job \(job) again"))
        }
    }

    /// Fetches the job every second until a coordinator answers or `reattach` passes.
    private func again(_ job: UInt64) async throws -> JobStream {
        let deadline = ContinuousClock.now + reattach
        while true {
            do {
                _ = try await client.status(timeout: .seconds(1))
                return try client.fetch(job: job, timeout: .seconds(5))
            } catch {
                guard ContinuousClock.now < deadline else {
                    throw ClientError.refused(
                        "the coordinator at \(client.endpoint) did not come back within \(reattach)"
                    )
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// A message without the first `skip` characters of streamed text (passed on before a re-attachment); nil when
    /// nothing of it is new.
    static func unseen(_ message: ClientMessage, skipping skip: inout Int) -> ClientMessage? {
        guard skip > 0, case .text(let job, let piece, let tokens) = message else { return message }
        let dropped = min(skip, piece.count)
        skip -= dropped
        let rest = String(piece.dropFirst(dropped))
        return rest.isEmpty ? nil : .text(job: job, piece: rest, tokens: tokens)
    }

    private enum StreamEvent: Sendable {
        case message(ClientMessage)
        case tick
        case ended
    }

    /// The stream's messages and a tick every `tick`, merged; a failure of the job is thrown.
    private static func events(of stream: JobStream, tick: Duration) -> AsyncThrowingStream<StreamEvent, any Error> {
        AsyncThrowingStream { continuation in
            let reader = Task {
                // A failure of the job, or no acceptance in time, ends the following with that error.
                do {
                    for try await message in stream { continuation.yield(.message(message)) }
                    continuation.yield(.ended)
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            let ticker = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick / 3)  // cancelled: the loop condition ends it
                    continuation.yield(.tick)
                }
            }
            continuation.onTermination = { _ in
                reader.cancel()
                ticker.cancel()
            }
        }
    }
}
