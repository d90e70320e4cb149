import Synchronization
import Transport

/// The coordinator's events waiting for its thread: client messages, worker messages and clock ticks, taken in turns
/// so that a flood on one socket cannot hold back the other (a client's status, a worker's heartbeat). Each socket's
/// queue has a bound; what arrives beyond it is dropped and counted.
final class FairInbox: Sendable {
    enum Event: Sendable {
        case client([ZMQMessage])
        case worker([ZMQMessage])
        case tick
    }

    private struct Queue {
        var items: [[ZMQMessage]] = []
        var head = 0
        var count: Int { items.count - head }

        mutating func pop() -> [ZMQMessage]? {
            guard head < items.count else { return nil }
            defer {
                head += 1
                if head > 1024, head * 2 > items.count {
                    items.removeFirst(head)
                    head = 0
                }
            }
            return items[head]
        }
    }

    private struct State {
        var clients = Queue()
        var workers = Queue()
        var tick = false
        var clientFirst = true
        var droppedClient = 0
        var droppedWorker = 0
    }

    let capacity: Int
    private let state = Mutex(State())
    let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(capacity: Int) {
        self.capacity = capacity
        (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func push(_ event: Event) {
        state.withLock { state in
            switch event {
            case .client(let frames):
                if state.clients.count < capacity {
                    state.clients.items.append(frames)
                } else {
                    state.droppedClient += 1
                }
            case .worker(let frames):
                if state.workers.count < capacity {
                    state.workers.items.append(frames)
                } else {
                    state.droppedWorker += 1
                }
            case .tick: state.tick = true
            }
        }
        wake.yield()
    }

    /// No more events will come.
    func close() { wake.finish() }

    /// Up to `limit` events: a pending tick first, then the two sockets in turns.
    func take(_ limit: Int) -> [Event] {
        state.withLock { state in
            var events: [Event] = []
            if state.tick {
                state.tick = false
                events.append(.tick)
            }
            while events.count < limit {
                let first = state.clientFirst
                state.clientFirst.toggle()
                if first, let frames = state.clients.pop() {
                    events.append(.client(frames))
                } else if let frames = state.workers.pop() {
                    events.append(.worker(frames))
                } else if let frames = state.clients.pop() {
                    events.append(.client(frames))
                } else {
                    break
                }
            }
            return events
        }
    }

    /// Messages dropped because a socket's queue was full.
    var dropped: (client: Int, worker: Int) { state.withLock { ($0.droppedClient, $0.droppedWorker) } }
}
