/// The rule for sockets without keys: without CurveZMQ nobody is proven, so any peer that reaches a socket can act
/// in any role; such sockets bind to this host's loopback only, unless the operator accepts the exposure.
public enum BindExposure {
    /// Whether a bind endpoint is reachable from this host only (loopback TCP, ipc, inproc).
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var address = endpoint.dropFirst("tcp://".count)
        // An interface (tcp://eth0;...) or a source address before ';' does not change where it listens.
        if let colon = address.lastIndex(of: ":") { address = address[..<colon] }
        let host = address.trimmingPrefix("[").split(separator: "]").first.map(String.init) ?? ""
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refuses to bind `endpoints` beyond loopback without keys unless `insecure`; with it, returns the warning to
    /// print at start (nil when nothing is exposed or keys protect it).
    public static func check(_ endpoints: [String], keyed: Bool, insecure: Bool) throws(ExposureError) -> String? {
        let exposed = endpoints.filter { !isLocal($0) }
        guard !keyed, !exposed.isEmpty else { return nil }
        guard insecure else { throw ExposureError(endpoints: exposed) }
        return """
            WARNING: \(exposed.joined(separator: ", ")) listen beyond this host WITHOUT keys: anyone who reaches them \
            can register as a worker, feed the stages and act on every job. Use --curve-dir (orthus keys) on any \
            network you do not fully trust.
            """
    }
}

/// A socket without keys would listen beyond loopback.
public struct ExposureError: Error, CustomStringConvertible {
    public let endpoints: [String]
    public var description: String {
        "\(endpoints.joined(separator: ", ")) would listen beyond this host without keys: give --curve-dir (make "
            + "keys with orthus keys), bind to 127.0.0.1, or accept the risk with --insecure"
    }
}
