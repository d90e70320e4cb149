import ClusterProtocol
import Foundation
import Synchronization
import Transport
import Wire

/// A client of the coordinator's client endpoint: submit, stream a job's results, fetch, cancel and status, each on
/// its own DEALER. Used by `orthus submit`, `fetch`, `status`, `eval`, `up`, the bench and the tests.
///
/// Every call honours its timeout: a request the coordinator does not answer in time ends with
/// `ClientError.noAnswer`, and an endpoint that is not a ZeroMQ address is refused before anything is sent.
public struct ClusterClient: Sendable {
    public let endpoint: String
    let options: ZMQSocket.Options
    let context: ZMQContext

    public init(endpoint: String, options: ZMQSocket.Options = ZMQSocket.Options()) throws {
        try Endpoint.check(endpoint)
        self.endpoint = endpoint
        self.options = options
        context = try ZMQContext()
    }

    /// Sends one request and returns the first reply `answer` takes (nil: not the answer, keep reading); a failure
    /// reply is the coordinator's refusal.
    func ask<Answer>(
        _ request: ClientMessage,
        timeout: Duration,
        _ answer: (ClientMessage) throws -> Answer?
    ) async throws -> Answer {
        let exchange = try Exchange(self, try request.message(), timeout)
        defer { exchange.close() }
        for try await reply in exchange.replies() {
            let message: ClientMessage
            do {
                message = try ClientMessage(reply)
            } catch {
                throw ClientError.refused("an unreadable reply: \(error)")
            }
            if case .failure(_, let reason) = message { throw ClientError.refused(reason) }
            if let found = try answer(message) { return found }
        }
        throw ClientError.closed(endpoint)
    }

    /// The coordinator's status report.
    public func status(timeout: Duration) async throws -> StatusReport {
        try await ask(.status, timeout: timeout) { (message: ClientMessage) -> StatusReport? in
            guard case .statusReport(let json) = message else { return nil }
            return try JSONDecoder().decode(StatusReport.self, from: Data(json.utf8))
        }
    }

    /// The coordinator's trace records after cursor `since` (`UInt64.max`: none, only the current cursor), every page
    /// of them.
    public func trace(since: UInt64, timeout: Duration) async throws -> TraceReport {
        var whole: TraceReport?
        var cursor = since
        while true {
            let page: TraceReport = try await ask(.trace(since: cursor), timeout: timeout) { message in
                guard case .traceReport(let json) = message else { return nil }
                return try JSONDecoder().decode(TraceReport.self, from: Data(json.utf8))
            }
            if var sofar = whole {
                sofar.beats += page.beats
                sofar.trips += page.trips
                (sofar.cursor, sofar.more, sofar.workers) = (page.cursor, page.more, page.workers)
                whole = sofar
            } else {
                whole = page
            }
            guard page.more, page.cursor > cursor else { return whole! }
            cursor = page.cursor
        }
    }

    /// How long a submit waits for its acceptance before it is sent again (with the same submission id, so the
    /// coordinator takes it for the same job): a coordinator killed with the first copy unread, or restarted, gets it
    /// from the copy.
    public static let resubmitEvery: Duration = .seconds(2)

    /// Submits a job (with a random submission id, unless `spec` has one): the picture (PNG bytes) of an image-to-text job and noise `[images, patches, latent]` travel as
    /// tensor frames. `acceptTimeout` bounds the wait for the coordinator's acceptance; the job then streams until it
    /// ends.
    public func submit(
        _ spec: JobSpec,
        picture: [UInt8]? = nil,
        noise: (shape: [Int], values: [Float])? = nil,
        acceptTimeout: Duration
    ) throws -> JobStream {
        let tensor = try noise.map { try NoiseTensor(shape: $0.shape, values: $0.values) }
        var spec = spec
        if spec.submission == 0 { spec.submission = UInt64.random(in: 1...UInt64.max) }
        let named = spec
        // Framed anew for each copy: a sent frame is consumed.
        let message: @Sendable () throws -> WireMessage = {
            try ClientMessage.submit(named, picture: picture, noise: tensor).message()
        }
        return JobStream(
            exchange: try Exchange(self, try message(), acceptTimeout, resend: (Self.resubmitEvery, message))
        )
    }

    /// Attaches to job `id`: a running job streams from where it is, an ended one is replayed from the journal.
    public func fetch(job id: UInt64, timeout: Duration) throws -> JobStream {
        JobStream(exchange: try Exchange(self, try ClientMessage.fetch(job: id).message(), timeout))
    }
}

/// Why a client call did not get its answer.
public enum ClientError: Error, Equatable, CustomStringConvertible {
    case badEndpoint(String)
    case noAnswer(String)
    case closed(String)
    /// The coordinator refused the request or failed the job, with its reason.
    case refused(String)

    public var description: String {
        switch self {
        case .badEndpoint(let detail): detail
        case .noAnswer(let endpoint): "no answer from the coordinator at \(endpoint)"
        case .closed(let endpoint): "the connection to the coordinator at \(endpoint) closed"
        case .refused(let reason): reason
        }
    }
}

/// ZeroMQ endpoints as users type them.
public enum Endpoint {
    /// Refuses what libzmq would not connect to, with the form expected (`127.0.0.1:5555` lacks `tcp://`).
    public static func check(_ endpoint: String) throws(ClientError) {
        let transports = ["tcp://", "ipc://", "inproc://"]
        guard let transport = transports.first(where: endpoint.hasPrefix) else {
            throw .badEndpoint(
                "'\(endpoint)' is not a ZeroMQ endpoint: write tcp://HOST:PORT (for example tcp://\(endpoint))"
            )
        }
        guard transport == "tcp://" else { return }
        let address = endpoint.dropFirst(transport.count)
        guard let colon = address.lastIndex(of: ":"), !address[..<colon].isEmpty,
            let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port)
        else { throw .badEndpoint("'\(endpoint)' needs a host and a port from 1 to 65535: tcp://HOST:PORT") }
    }

    /// The same for an endpoint to bind, whose port may be `*` or 0 (any free one).
    public static func checkBind(_ endpoint: String) throws(ClientError) {
        guard endpoint.hasPrefix("tcp://"), endpoint.hasSuffix(":*") || endpoint.hasSuffix(":0") else {
            return try check(endpoint)
        }
        try check(String(endpoint.dropLast()) + "1")
    }
}

/// One request on its own DEALER, and the replies to it. Nothing answering within the timeout closes the socket and
/// ends the replies with `ClientError.noAnswer`; the first reply disarms the timer.
final class Exchange: Sendable {
    let pump: SocketPump
    let endpoint: String
    /// Whether an answer came, and whether the timer gave up first.
    private final class State: Sendable {
        let answered = Atomic<Bool>(false)
        let gaveUp = Atomic<Bool>(false)
    }
    private let state = State()
    private let timer: Task<Void, Never>

    /// Sends `message`; without any answer within `timeout` the replies end with `ClientError.noAnswer`. With
    /// `resend`, a copy (framed anew: a sent frame is consumed) goes out at its interval until an answer comes (for
    /// messages the coordinator takes once however often they come).
    init(
        _ client: ClusterClient,
        _ message: WireMessage,
        _ timeout: Duration,
        resend: (every: Duration, message: @Sendable () throws -> WireMessage)? = nil
    ) throws {
        endpoint = client.endpoint
        let pump = try SocketPump(
            context: client.context,
            name: "client",
            kind: .dealer,
            options: client.options,
            connect: client.endpoint
        )
        self.pump = pump
        try pump.send(message)
        let state = self.state
        timer = Task {
            let end = ContinuousClock.now + timeout
            while ContinuousClock.now < end {
                do {
                    try await Task.sleep(until: min(end, ContinuousClock.now + (resend?.every ?? timeout)))
                } catch {
                    return  // disarmed: an answer came, or the exchange closed
                }
                guard !state.answered.load(ordering: .relaxed) else { return }
                guard let resend, ContinuousClock.now < end else { break }
                do {
                    try pump.send(try resend.message())
                } catch {
                    break  // it framed once, so it frames again; if not, the wait ends as unanswered
                }
            }
            guard !state.answered.load(ordering: .relaxed) else { return }
            state.gaveUp.store(true, ordering: .relaxed)
            pump.stop()
        }
    }

    /// The replies, parsed. The coordinator is this socket's only peer; a frame it could not have sent is refused.
    func replies() -> AsyncThrowingStream<WireMessage, any Error> {
        let (pump, state, timer, endpoint) = (pump, state, timer, endpoint)
        return AsyncThrowingStream { continuation in
            let reader = Task {
                for await frames in pump.inbound {
                    if !state.answered.exchange(true, ordering: .relaxed) { timer.cancel() }
                    do {
                        continuation.yield(try WireMessage.parse(frames))
                    } catch {
                        continuation.finish(throwing: ClientError.refused("an unreadable reply: \(error)"))
                        return
                    }
                }
                let timedOut = state.gaveUp.load(ordering: .relaxed)
                continuation.finish(throwing: timedOut ? ClientError.noAnswer(endpoint) : ClientError.closed(endpoint))
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }

    func send(_ message: WireMessage) throws { try pump.send(message) }

    func close() {
        timer.cancel()
        pump.stop()
    }
}
