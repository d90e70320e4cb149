import Foundation
import Runtime
import Synchronization

/// Runs the built `orthus` executable as a child process.
public enum OrthusProcess {
    public struct Output: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The executable sits beside the test bundle in the build products folder.
    public static var executable: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("orthus").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return packageRoot.appendingPathComponent(".build/debug/orthus").path
    }

    /// Output goes to temporary files, not pipes: nothing can block on a full pipe, and reading a file is not
    /// interrupted by the child's exit signal.
    /// `environment` is added to this process's.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let (process, files) = try launch([executable] + arguments, environment: environment)
        process.waitUntilExit()
        return try files.output(process)
    }

    /// `run` without blocking a thread of the cooperative pool while the child runs (tests that run several children
    /// at once on a 2-core machine would otherwise serialize them).
    /// `wrapper` runs it under another command (`ip netns exec NS`, for one).
    /// `environment` is added to this process's.
    public static func output(
        _ arguments: [String],
        under wrapper: [String] = [],
        environment: [String: String] = [:]
    ) async throws -> Output {
        try await output(command: wrapper + [executable] + arguments, environment: environment)
    }

    /// Any program's output, the same way (`command[0]` is its path).
    public static func output(command: [String], environment: [String: String] = [:]) async throws -> Output {
        let (process, files) = try launch(command, waitable: true, environment: environment)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            files.exited.withLock { state in
                if state.exited { done.resume() } else { state.waiter = done }
            }
        }
        return try files.output(process)
    }

    final class CapturedFiles: Sendable {
        struct ExitState {
            var exited = false
            var waiter: CheckedContinuation<Void, Never>?
        }
        let out: String
        let err: String
        let exited = Mutex(ExitState())

        init() throws {
            let base = NSTemporaryDirectory() + "orthus-cli-" + UUID().uuidString
            (out, err) = (base + ".out", base + ".err")
            for path in [out, err] where !FileManager.default.createFile(atPath: path, contents: nil) {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }

        func output(_ process: Process) throws -> Output {
            // Cleanup of captured output; it must not fail the test that ran the command.
            defer { for path in [out, err] { try? FileManager.default.removeItem(atPath: path) } }
            return Output(
                status: process.terminationStatus,
                stdout: String(decoding: try Data(contentsOf: URL(fileURLWithPath: out)), as: UTF8.self),
                stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: err)), as: UTF8.self)
            )
        }
    }

    private static func launch(
        _ command: [String],
        waitable: Bool = false,
        environment: [String: String] = [:]
    ) throws -> (Process, CapturedFiles) {
        let files = try CapturedFiles()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: files.out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: files.err))
        if waitable {
            process.terminationHandler = { _ in
                let waiter = files.exited.withLock { state in
                    state.exited = true
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
        try process.run()
        return (process, files)
    }

    /// Starts a long-running child (a cluster process) with stdout and stderr going to `log`.
    public static func start(_ arguments: [String], log: String) throws -> Process {
        try ChildProcess.start(executable: executable, arguments: arguments, log: log)
    }
}
