import Foundation

/// Unbuffered writes to stdout and stderr (streamed tokens must appear as they are produced).
enum StandardStreams {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
