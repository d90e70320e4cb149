import ClusterProtocol
import Foundation
import Transport
import Wire

/// What a client hears about its job, in order.
public enum JobEvent: Sendable, Equatable {
    /// The coordinator accepted it as `job`; `prompt` as it read it, `queuedAhead` jobs before it.
    case accepted(job: UInt64, prompt: String, queuedAhead: Int)
    /// Streamed text (text modes) and the tokens generated so far (every mode).
    case text(String, tokens: Int)
    /// Patch `done` of `total` of image `image` is sampled.
    case patches(image: Int, done: Int, total: Int)
    /// A run of an interleaved answer's text, in order with its images.
    case answerText(String)
    /// A finished image: its PNG and latents `[patch][latent]`.
    case image(index: Int, png: [UInt8], latents: [[Float]])
    /// The job is done; `rest` ends the streamed text.
    case finished(rest: String)
}

/// The messages of one job as events, ending after `finished`; a failure (the coordinator's reason), a silent
/// coordinator or a closed connection ends it with `ClientError`.
public struct JobStream: AsyncSequence, Sendable {
    public typealias Element = JobEvent
    let exchange: Exchange

    /// Asks the coordinator to stop the job (its reply, a failure naming the cancellation, ends the stream).
    public func cancel(job: UInt64) throws {
        try exchange.send(WireMessage(envelope: Envelope(kind: MessageKind.cancel.rawValue, jobID: job)))
    }

    /// Closes the connection; the stream ends.
    public func close() { exchange.close() }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var replies: AsyncThrowingStream<WireMessage, any Error>.AsyncIterator
        let exchange: Exchange
        var done = false

        public mutating func next() async throws -> JobEvent? {
            guard !done else { return nil }
            while let reply = try await replies.next() {
                let e = reply.envelope
                switch e.messageKind {
                case .accepted:
                    return .accepted(job: e.jobID, prompt: e.prompt, queuedAhead: Int(e.queuedAhead))
                case .text: return .text(e.answerText, tokens: Int(e.progressDone))
                case .patches:
                    return .patches(image: Int(e.imageIndex), done: Int(e.progressDone), total: Int(e.progressTotal))
                case .piece: return .answerText(e.answerText)
                case .image: return try Self.image(reply)
                case .finished:
                    done = true
                    exchange.close()
                    return .finished(rest: e.answerText)
                case .failure:
                    done = true
                    exchange.close()
                    throw ClientError.refused(e.error)
                default: continue
                }
            }
            return nil
        }

        /// An image message: frames `png` u8 and `latents` f32 [patches, latent].
        static func image(_ message: WireMessage) throws -> JobEvent {
            let e = message.envelope
            guard e.tensors.count == 2, e.tensors[0].dtype == .uint8, e.tensors[1].dtype == .float32,
                e.tensors[1].shape.count == 2
            else { throw ClientError.refused("an image message needs png u8 and latents f32 [patches, latent]") }
            let (patches, width) = (e.tensors[1].shape[0], e.tensors[1].shape[1])
            let values: [Float] = message.tensors[1].array()
            let latents = (0..<patches).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
            return .image(index: Int(e.imageIndex), png: message.tensors[0].bytes, latents: latents)
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

    /// Adds one event; returns true at `finished`.
    public mutating func add(_ event: JobEvent) -> Bool {
        switch event {
        case .accepted(let id, let prompt, _):
            job = id
            self.prompt = prompt
        case .text(let piece, _): streamed += piece
        case .patches: break
        case .answerText(let text): pieces.append(.text(text))
        case .image(_, let png, let latents):
            pieces.append(.image(png: png, latents: latents))
            images.append(latents)
        case .finished(let rest):
            self.rest = rest
            return true
        }
        return false
    }
}

extension JobStream {
    /// Reads the whole job; `observe` sees each event as it comes.
    public func collect(observe: (JobEvent) -> Void = { _ in }) async throws -> JobOutcome {
        var outcome = JobOutcome()
        for try await event in self {
            observe(event)
            if outcome.add(event) { return outcome }
        }
        throw ClientError.closed(exchange.endpoint)
    }
}
