import Foundation

/// Starting cluster processes (`orthus up`, the bench's cluster, the tests' clusters): one child with stdout and
/// stderr appended to a log file, and a compute-thread count in its environment.
public enum ChildProcess {
    /// Starts `executable` with `arguments`; `threads` sets `ORTHUS_THREADS` and `OPENBLAS_NUM_THREADS` when given.
    public static func start(
        executable: String,
        arguments: [String],
        threads: Int? = nil,
        log: String
    ) throws
        -> Process
    {
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: log])
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if let threads {
            environment["ORTHUS_THREADS"] = "\(threads)"
            environment["OPENBLAS_NUM_THREADS"] = "\(threads)"
            // Idle OpenBLAS threads go to sleep quickly instead of spinning against the I/O threads.
            environment["OPENBLAS_THREAD_TIMEOUT"] = "4"
        }
        process.environment = environment
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }
}
