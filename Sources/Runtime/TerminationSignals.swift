import Foundation

/// SIGTERM and SIGINT as an async stream (the default handlers are replaced, so the process can drain first).
public enum TerminationSignals {
    /// The dispatch sources must stay alive for the process's life; a process asks for this stream once.
    private nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

    public static func stream() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        return stream
    }
}
