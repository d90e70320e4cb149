import Foundation

/// A streamed chat completion over a plain TCP socket, timed to its first piece of content: the gateway's time to
/// first token as an HTTP client sees it, with nothing of a client library's own in between.
struct GatewayProbe {
    let port: Int
    let model: String

    /// Sends the job as a streamed chat completion and reads the whole answer; returns the time from the request's
    /// first byte to the first chunk that carries text.
    func firstToken(prompt: String, maxTokens: Int, seed: UInt64) throws -> Duration {
        let body = try JSONSerialization.data(
            withJSONObject: [
                "model": model, "stream": true, "max_tokens": maxTokens, "seed": seed, "temperature": 0,
                "messages": [["role": "user", "content": prompt]],
            ] as [String: Any]
        )
        let head =
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw BenchError("connect to the gateway: \(String(cString: strerror(errno)))") }
        let request = Array(head.utf8) + Array(body)
        let start = ContinuousClock.now
        let sent = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { throw BenchError("the request was not sent whole") }
        var received: [UInt8] = []
        var first: Duration?
        var buffer = [UInt8](repeating: 0, count: 16384)
        let marker = Array(#""content":""#.utf8)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[..<count]
            // The first chunk carries the role and an empty content; the first token's chunk a non-empty one.
            if first == nil, Self.hasText(received, after: marker) { first = ContinuousClock.now - start }
        }
        guard let first else {
            throw BenchError(
                "the gateway's answer had no text: \(String(decoding: received.prefix(400), as: UTF8.self))"
            )
        }
        return first
    }

    /// Whether some `"content":"` in `bytes` is followed by a character other than the closing quote.
    static func hasText(_ bytes: [UInt8], after marker: [UInt8]) -> Bool {
        guard bytes.count > marker.count else { return false }
        for start in 0..<(bytes.count - marker.count) where bytes[start..<(start + marker.count)].elementsEqual(marker)
        {
            if bytes[start + marker.count] != UInt8(ascii: "\"") { return true }
        }
        return false
    }
}
