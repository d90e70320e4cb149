internal import CZeroMQ
import Foundation
import Synchronization
import Wire

/// Owns one ZeroMQ socket on a dedicated OS thread and bridges it to Swift concurrency.
///
/// * Inbound: every whole multipart message is yielded into `inbound`; the stream finishes when the pump stops.
/// * Outbound: `send` queues a message and wakes the thread through an inproc PAIR; it never blocks the caller.
///   A message refused at the high-water mark stays queued and is retried when the socket can send again.
/// Nothing here runs on Swift's cooperative pool, and the socket is touched only by its thread.
public final class SocketPump: Sendable {
    public let inbound: AsyncStream<[ZMQMessage]>
    /// The endpoint the socket bound, when `setup` bound one (resolves `tcp://127.0.0.1:*`).
    public let boundEndpoint: String?
    /// Outbound messages libzmq refused for a reason other than backpressure (e.g. an unknown ROUTER peer).
    public var failedSends: Int { state.failures.load(ordering: .relaxed) }
    /// Outbound messages dropped because their peer's queue was full (`Options.dropWhenPeerFull`).
    public var droppedSends: Int { state.dropped.load(ordering: .relaxed) }

    private let state: State
    private let waker: Mutex<WakeSocket>

    /// A receiver closure in a box: a closure stored in and read back from a generic `Mutex` is re-wrapped in a
    /// conversion thunk on every access (seen as a chain of thunks growing with each message), a class reference
    /// is not.
    final class Receiver: Sendable {
        let receive: @Sendable ([ZMQMessage]) -> Void
        init(_ receive: @escaping @Sendable ([ZMQMessage]) -> Void) { self.receive = receive }
    }

    /// What the caller's threads and the pump's thread share.
    final class State: Sendable {
        let outbox = Mutex<[[ZMQMessage]]>([])
        let stopping = Atomic<Bool>(false)
        let failures = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)
        /// Set by `deliver(to:)`: inbound messages go to it on the pump's thread instead of into `inbound`.
        let receiver = Mutex<Receiver?>(nil)
        /// Messages queued by `send` and not yet handed to libzmq (or dropped).
        let unsent = Atomic<Int>(0)
        /// `flush` callers waiting for `unsent` to reach zero.
        let flushWaiters = Mutex<[UInt64: CheckedContinuation<Bool, Never>]>([:])
        let nextWaiter = Atomic<UInt64>(0)

        /// One message left the queue; the last one wakes the `flush` callers.
        func sent() {
            guard unsent.subtract(1, ordering: .relaxed).newValue == 0 else { return }
            wakeFlushers(true)
        }

        func wakeFlushers(_ drained: Bool) {
            let waiters = flushWaiters.withLock { waiters in
                defer { waiters.removeAll() }
                return waiters.values
            }
            for waiter in waiters { waiter.resume(returning: drained) }
        }
        let finished = DispatchSemaphore(value: 0)
    }

    /// The sending end of the wake-up pair; used only under `waker`'s lock.
    struct WakeSocket: @unchecked Sendable {  // guarded by the Mutex that holds it
        let socket: ZMQSocket
    }

    private static let counter = Atomic<Int>(0)

    /// Starts the thread; `setup` creates, configures and binds or connects the socket on it.
    /// Blocks briefly until setup has finished, and throws its error.
    public init(
        context: ZMQContext,
        name: String,
        setup: @escaping @Sendable (ZMQContext) throws -> ZMQSocket
    ) throws {
        let wakeEndpoint = "inproc://orthus-pump-wake-\(Self.counter.add(1, ordering: .relaxed).newValue)"
        let wakeReceiver = try ZMQSocket(context, kind: .pair)
        try wakeReceiver.bind(wakeEndpoint)
        let wakeSender = try ZMQSocket(context, kind: .pair)
        try wakeSender.connect(wakeEndpoint)
        waker = Mutex(WakeSocket(socket: wakeSender))
        let state = State()
        self.state = state
        let (stream, continuation) = AsyncStream.makeStream(of: [ZMQMessage].self)
        inbound = stream

        struct Started: @unchecked Sendable {  // written before `ready` is signalled, read after
            var endpoint: String?
            var error: (any Error)?
        }
        let started = Mutex(Started())
        let ready = DispatchSemaphore(value: 0)
        let receiver = WakeSocket(socket: wakeReceiver)
        let thread = Thread {
            Thread.current.name = name  // set from inside: Linux threads inherit their creator's name
            let socket: ZMQSocket
            do {
                socket = try setup(context)
                let endpoint = try? socket.lastEndpoint()  // only a bound socket has one
                started.withLock { $0.endpoint = endpoint?.isEmpty == false ? endpoint : nil }
            } catch {
                started.withLock { $0.error = error }
                ready.signal()
                continuation.finish()
                state.finished.signal()
                return
            }
            ready.signal()
            Self.loop(socket: socket, wake: receiver.socket, state: state, continuation: continuation)
            continuation.finish()
            state.finished.signal()
        }
        thread.name = name
        thread.start()
        ready.wait()
        let result = started.withLock { $0 }
        if let error = result.error { throw error }
        boundEndpoint = result.endpoint
    }

    /// A pump for one socket of `kind` that binds and/or connects the given endpoints.
    public convenience init(
        context: ZMQContext,
        name: String,
        kind: ZMQSocket.Kind,
        options: ZMQSocket.Options = ZMQSocket.Options(),
        bind: String? = nil,
        connect: String? = nil
    ) throws {
        try self.init(context: context, name: name) { context in
            let socket = try ZMQSocket(context, kind: kind, options: options)
            if let bind { try socket.bind(bind) }
            if let connect { try socket.connect(connect) }
            return socket
        }
    }

    /// Hands every inbound message from now on to `receiver`, called on the pump's own thread, instead of the
    /// `inbound` stream: nothing waits in an unbounded buffer between the socket and a consumer that bounds its own
    /// queues (the coordinator's inbox, under a flood). `receiver` must return quickly.
    public func deliver(to receiver: @escaping @Sendable ([ZMQMessage]) -> Void) {
        let box = Receiver(receiver)
        state.receiver.withLock { $0 = box }
    }

    /// Frames and queues a cluster message; one whose tensors disagree with its descriptors is refused with the reason.
    public func send(_ message: WireMessage) throws {
        send(try message.frames())
    }

    /// Reports a failure to the peer. A report is an envelope alone, which fails to frame only when memory runs out;
    /// then it is counted in `failedSends`, since there is no one else to tell.
    public func sendFailure(about envelope: Envelope?, error: any Error) {
        do {
            try send(WireMessage(envelope: .failure(about: envelope, error: error)))
        } catch {
            state.failures.add(1, ordering: .relaxed)
        }
    }

    /// Queues a message for sending; returns at once.
    public func send(_ frames: [ZMQMessage]) {
        state.unsent.add(1, ordering: .relaxed)
        state.outbox.withLock { $0.append(frames) }
        wake()
    }

    /// Waits until every queued message has been handed to libzmq (or dropped), for up to `timeout`; returns whether
    /// the queue emptied. Call it before `stop` when the last replies matter (linger is 0).
    public func flush(timeout: Duration = .seconds(5)) async -> Bool {
        let state = self.state
        let id = state.nextWaiter.add(1, ordering: .relaxed).newValue
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let drained = state.flushWaiters.withLock { waiters -> Bool in
                        // Checked under the lock the sender's wake-up takes, so a wake-up is never missed.
                        guard state.unsent.load(ordering: .relaxed) > 0 else { return true }
                        waiters[id] = continuation
                        return false
                    }
                    if drained { continuation.resume(returning: true) }
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return true  // cancelled: the queue drained first
                }
                // Time is up: this caller stops waiting.
                state.flushWaiters.withLock { $0.removeValue(forKey: id) }?.resume(returning: false)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Stops the thread (pending outbound messages are dropped, as linger 0 says) and waits for it to exit.
    public func stop() {
        guard !state.stopping.exchange(true, ordering: .relaxed) else { return }
        wake()
        state.finished.wait()
    }

    deinit { stop() }

    private func wake() {
        waker.withLock { wake in
            // A full wake pipe already guarantees a wake-up, so a refused signal is harmless.
            _ = try? wake.socket.send([ZMQMessage(bytes: [1])])
        }
    }

    private static func loop(
        socket: ZMQSocket,
        wake: ZMQSocket,
        state: State,
        continuation: AsyncStream<[ZMQMessage]>.Continuation
    ) {
        var pending: [[ZMQMessage]] = []
        var budget = ReceiveBudget(rate: socket.receiveRate)
        while !state.stopping.load(ordering: .relaxed) {
            budget.refill(at: .now)
            let reading = budget.allows
            var items = [
                zmq_pollitem_t(
                    socket: socket.handle,
                    fd: 0,
                    events: (reading ? Int16(ZMQ_POLLIN) : 0) | (pending.isEmpty ? 0 : Int16(ZMQ_POLLOUT)),
                    revents: 0
                ),
                zmq_pollitem_t(socket: wake.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
            ]
            if zmq_poll(&items, 2, reading ? 100 : budget.millisecondsToNext) < 0 {
                let error = ZMQError.last("zmq_poll")
                if error.interrupted { continue }
                return
            }
            while (try? wake.receive()) != nil {}  // empties the wake pipe: its messages carry nothing
            pending += state.outbox.withLock { queued in
                defer { queued.removeAll() }
                return queued
            }
            var handled = 0  // taken off the front at once: removing one at a time costs O(n) each
            sending: while handled < pending.count {
                do {
                    try socket.send(pending[handled])
                } catch let error where error.wouldBlock && socket.dropsWhenPeerFull {
                    state.dropped.add(1, ordering: .relaxed)  // that peer does not read: only its message goes
                } catch let error where error.wouldBlock {
                    break sending  // backpressure: keep it queued, poll for POLLOUT
                } catch let error where error.terminated {
                    return
                } catch {
                    state.failures.add(1, ordering: .relaxed)
                }
                handled += 1
                state.sent()
            }
            pending.removeFirst(handled)
            do {
                // A bounded batch per round: under a flood the socket is never empty, and sending must get its turn.
                var received = 0
                while received < 512, budget.allows, let message = try socket.receive() {
                    received += 1
                    budget.take()
                    if let receiver = state.receiver.withLock({ $0 }) {
                        receiver.receive(message)
                    } else {
                        continuation.yield(message)
                    }
                }
            } catch let error where error.terminated {
                return
            } catch {
                state.failures.add(1, ordering: .relaxed)
            }
        }
    }
}

/// How fast a pump reads its socket (`ZMQSocket.Options.receiveRate`): a token bucket of one tenth of a second's
/// messages. While it is empty the pump does not read, so the peers' messages wait in libzmq's bounded pipes and then
/// in their own TCP buffers (backpressure on whoever floods), and libzmq's fair queueing still takes the next message
/// from each peer in turn.
struct ReceiveBudget {
    let rate: Double?
    private var tokens: Double
    private var refilled = ContinuousClock.now

    init(rate: Double?) {
        self.rate = rate
        tokens = rate.map { max(1, $0 / 10) } ?? 0
    }

    var allows: Bool { rate == nil || tokens >= 1 }

    mutating func take() { if rate != nil { tokens -= 1 } }

    mutating func refill(at now: ContinuousClock.Instant) {
        guard let rate else { return }
        let elapsed = (now - refilled).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        tokens = min(max(1, rate / 10), tokens + seconds * rate)
        refilled = now
    }

    /// How long until the next token, for the poll's timeout.
    var millisecondsToNext: Int {
        guard let rate, tokens < 1 else { return 0 }
        return max(1, Int(((1 - tokens) / rate * 1000).rounded(.up)))
    }
}
