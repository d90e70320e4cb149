import Foundation
import Logging

/// Unbuffered writes to stdout and stderr (streamed tokens must appear as they are produced).
enum StandardStreams {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// The command's loggers: swift-log's stream handler on stderr, set up on first use (libraries take a logger and never
/// make one; the executable decides where logs go).
enum CommandLog {
    private static let bootstrapped: Void = LoggingSystem.bootstrap(StreamLogHandler.standardError)

    static func logger(_ label: String) -> Logger {
        _ = bootstrapped
        return Logger(label: label)
    }
}
