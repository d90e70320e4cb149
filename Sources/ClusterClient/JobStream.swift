import ClusterProtocol
import Foundation
import Transport
import Wire

/// The messages of one job, ending after `finished`; a failure (the coordinator's reason), a silent coordinator or
/// a closed connection ends it with `ClientError`.
public struct JobStream: AsyncSequence, Sendable {
    public typealias Element = ClientMessage
    let exchange: Exchange

    /// Asks the coordinator to stop the job (its reply, a failure naming the cancellation, ends the stream).
    public func cancel(job: UInt64) throws {
        try exchange.send(try ClientMessage.cancel(job: job).message())
    }

    /// Closes the connection; the stream ends.
    public func close() { exchange.close() }

    /// The coordinator's endpoint.
    public var endpoint: String { exchange.endpoint }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var replies: AsyncThrowingStream<WireMessage, any Error>.AsyncIterator
        let exchange: Exchange
        var done = false

        public mutating func next() async throws -> ClientMessage? {
            guard !done else { return nil }
            while let reply = try await replies.next() {
                let message: ClientMessage
                do {
                    message = try ClientMessage(reply)
                } catch {
                    throw ClientError.refused("an unreadable reply: \(error)")
                }
                switch message {
                case .accepted, .text, .patches, .answerText, .image: return message
                case .finished:
                    done = true
                    exchange.close()
                    return message
                case .failure(_, let reason):
                    done = true
                    exchange.close()
                    throw ClientError.refused(reason)
                default: continue
                }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(replies: exchange.replies().makeAsyncIterator(), exchange: exchange)
    }
}

/// A finished job as a whole: its prompt, text and pieces in order.
public struct JobOutcome: Sendable {
    public enum Piece: Sendable {
        case text(String)
        case image(png: [UInt8], latents: [[Float]])
    }
    public var job: UInt64 = 0
    public var prompt = ""
    public var streamed = ""
    /// The end of the streamed text.
    public var rest = ""
    public var pieces: [Piece] = []
    /// Every image's latents, in order.
    public var images: [[[Float]]] = []
    /// The whole text answer (text modes).
    public var text: String { streamed + rest }

    public init() {}

    /// Adds one message; returns true at `finished`.
    public mutating func add(_ message: ClientMessage) -> Bool {
        switch message {
        case .accepted(let id, let prompt, _):
            job = id
            self.prompt = prompt
        case .text(_, let piece, _): streamed += piece
        case .answerText(_, let text): pieces.append(.text(text))
        case .image(_, _, let png, let latents):
            pieces.append(.image(png: png, latents: latents))
            images.append(latents)
        case .finished(_, let rest):
            self.rest = rest
            return true
        default: break
        }
        return false
    }
}

extension JobStream {
    /// Reads the whole job; `observe` sees each event as it comes.
    public func collect(observe: (ClientMessage) -> Void = { _ in }) async throws -> JobOutcome {
        var outcome = JobOutcome()
        for try await event in self {
            observe(event)
            if outcome.add(event) { return outcome }
        }
        throw ClientError.closed(exchange.endpoint)
    }
}
