import Foundation
import Synchronization
import Testing

@testable import Runtime

@Suite struct SerialThreadTests {
    final class Recorder: Sendable {
        let order = Mutex<[Int]>([])
        let threads = Mutex<Set<UInt>>([])
        let callers = Mutex<Set<UInt>>([])
    }

    /// The OS thread running this code (Foundation's thread names are unreliable on Linux: a new thread can report
    /// the name it inherited from its creator).
    static func osThread() -> UInt { UInt(pthread_self()) }

    @Test func jobsRunInOrderOnOneThreadThatIsNotTheCaller() async throws {
        let thread = SerialThread(name: "compute")
        let recorder = Recorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                try await thread.run { recorder.order.withLock { $0.append(i) } }
                group.addTask {
                    recorder.callers.withLock { _ = $0.insert(Self.osThread()) }
                    try await thread.run { recorder.threads.withLock { _ = $0.insert(Self.osThread()) } }
                }
            }
            try await group.waitForAll()
        }
        #expect(recorder.order.withLock { $0 } == Array(0..<20))
        // Every job ran on one OS thread, which is none of the callers' and not another SerialThread's.
        let threads = recorder.threads.withLock { $0 }
        let other = SerialThread(name: "other")
        let otherThread = try await other.run { Self.osThread() }
        #expect(threads.count == 1 && !threads.contains(otherThread))
        #expect(threads.isDisjoint(with: recorder.callers.withLock { $0 }))
        other.stop()
        thread.stop()
    }

    @Test func errorsReachTheCaller() async {
        struct Boom: Error {}
        let thread = SerialThread(name: "errors")
        await #expect(throws: Boom.self) { try await thread.run { throw Boom() } }
        thread.stop()
    }

    @Test func aJobAfterStopFailsInsteadOfHanging() async {
        let thread = SerialThread(name: "stopped")
        thread.stop()
        await #expect(throws: CancellationError.self) { try await thread.run { 1 } }
    }
}
