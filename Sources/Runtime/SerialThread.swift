import Foundation
import Synchronization

/// One dedicated OS thread for long or blocking work (model compute, BLAS), bridged to async callers.
///
/// Swift's cooperative pool has only as many threads as cores (2 in CI); running a forward pass there would stall
/// every other task, heartbeats included. Jobs run in submission order; none is lost at shutdown: `stop` lets the
/// queue drain, and a job submitted after it fails with `CancellationError` instead of hanging.
public final class SerialThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopped = false
    }

    /// What the callers and the thread share.
    private final class Shared: Sendable {
        let state = Mutex(State())
        let wake = DispatchSemaphore(value: 0)
        let exited = DispatchSemaphore(value: 0)
    }

    private let shared = Shared()

    public init(name: String) {
        let shared = self.shared
        let thread = Thread {
            // Named from inside: on Linux a new thread inherits its creator's name, and a name set before start
            // is not applied.
            Thread.current.name = name

            while true {
                shared.wake.wait()
                let next: (@Sendable () -> Void)? = shared.state.withLock { s in
                    s.jobs.isEmpty ? nil : s.jobs.removeFirst()
                }
                if let next {
                    next()
                    continue
                }
                if shared.state.withLock({ $0.stopped && $0.jobs.isEmpty }) { break }
            }
            shared.exited.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = shared.state.withLock { s in
                guard !s.stopped else { return false }
                s.jobs.append { continuation.resume(with: Result(catching: body)) }
                return true
            }
            if accepted { shared.wake.signal() } else { continuation.resume(throwing: CancellationError()) }
        }
    }

    /// Finishes the queued jobs, then ends the thread; waits for it.
    public func stop() {
        let first = shared.state.withLock { s in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        shared.wake.signal()
        shared.exited.wait()
    }
}
