import Foundation

/// The line `orthus coordinator` prints once its sockets are bound. Launchers (the bench, the cluster tests) start it
/// on free ports (`tcp://127.0.0.1:*`) and read the endpoints back from its log.
public enum CoordinatorAnnouncement {
    static let prefix = "coordinator: clients on "
    static let separator = ", workers on "

    public static func line(clients: String, workers: String) -> String { prefix + clients + separator + workers }

    /// The endpoints announced in `log`, once the line is there.
    public static func parse(_ log: String) -> (clients: String, workers: String)? {
        for line in log.split(separator: "\n") where line.hasPrefix(prefix) {
            let parts = line.dropFirst(prefix.count).components(separatedBy: separator)
            if parts.count == 2 { return (parts[0], parts[1]) }
        }
        return nil
    }

    /// Polls the log file at `path` until the line appears or `seconds` pass.
    public static func wait(forLogAt path: String, seconds: Double = 30) -> (clients: String, workers: String)? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            // The log may not exist yet: that is what this loop waits out; the deadline reports it.
            if let endpoints = parse((try? String(contentsOfFile: path, encoding: .utf8)) ?? "") { return endpoints }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return nil
    }
}
