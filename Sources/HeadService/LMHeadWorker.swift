import ClusterProtocol
import Heads
import Runtime
import Synchronization
import Tensor
import Transport
import Wire

/// An LM-head pool worker: token requests in, chosen tokens out, on one socket (a DEALER connected to the
/// coordinator's ROUTER). Logits run on the worker's own thread; each row is chosen exactly as the single-process
/// engine chooses it (`Sampler.choose(logits:mask:sampling:seed:counter:)`).
public final class LMHeadWorker: Sendable {
    private let head: LMHead
    private let thread = SerialThread(name: "lm-head")
    private let socket: SocketPump
    private let rejectedCount = Atomic<Int>(0)
    private let inProgress = Atomic<Int>(0)
    /// Every request's logits and choices, timed: the busy time and the spans heartbeats report.
    public let work = SpanLog()

    /// Requests refused (malformed or of the wrong kind); each got a `failure` reply.
    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }
    /// Requests received and not yet answered (what heartbeats report as load).
    public var outstanding: Int { inProgress.load(ordering: .relaxed) }

    public init(head: LMHead, socket: SocketPump) {
        self.head = head
        self.socket = socket
    }

    /// Answers requests until the socket stops, or until the coordinator accepts this worker's drain (every request
    /// sent before that acceptance has been answered by then).
    public func run() async {
        await socket.servePool(rejected: { rejectedCount.add(1, ordering: .relaxed) }) { try await handle($0) }
        thread.stop()
    }

    private func handle(_ message: WireMessage) async throws {
        guard message.envelope.kind == MessageKind.sampleTokens.rawValue else {
            throw HeadRequestError.unexpectedKind(message.envelope.kind)
        }
        let request = try TokenRequest.parse(message, hiddenSize: head.hiddenSize)
        inProgress.add(1, ordering: .relaxed)
        defer { inProgress.subtract(1, ordering: .relaxed) }
        let (head, work) = (self.head, self.work)
        let tokens: [Int] = try await thread.run {
            work.time(.tokens, id: request.requestID, rows: request.rows.count) {
                let logits = head.logits(request.hidden)
                return request.rows.enumerated().map { index, row in
                    row.choose(Array(logits.storage[(index * logits.columns)..<((index + 1) * logits.columns)]))
                }
            }
        }
        try socket.send(try TokenReply(requestID: request.requestID, tokens: tokens).message())
    }
}
