import Foundation
import Synchronization
import Testing

@testable import Runtime

@Suite struct SerialThreadTests {
    final class Recorder: Sendable {
        let order = Mutex<[Int]>([])
        let names = Mutex<Set<String>>([])
    }

    @Test func jobsRunInOrderOnOneThreadThatIsNotTheCaller() async throws {
        let thread = SerialThread(name: "compute")
        let recorder = Recorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                try await thread.run { recorder.order.withLock { $0.append(i) } }
                group.addTask {
                    try await thread.run { recorder.names.withLock { _ = $0.insert(Thread.current.name ?? "") } }
                }
            }
            try await group.waitForAll()
        }
        #expect(recorder.order.withLock { $0 } == Array(0..<20))
        #expect(recorder.names.withLock { $0 } == ["compute"])
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
