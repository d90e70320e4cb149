import Foundation
import Runtime

/// The line `orthus coordinator` prints once its sockets are bound. Launchers (the bench, the cluster tests) start it
/// on free ports (`tcp://127.0.0.1:*`) and read the endpoints back from its log.
public enum CoordinatorAnnouncement {
    static let prefix = "coordinator: clients on "
    static let separator = ", workers on "

    public static func line(clients: String, workers: String) -> String { prefix + clients + separator + workers }

    /// The endpoints of an announcement line.
    static func parse(_ line: Substring) -> (clients: String, workers: String)? {
        let parts = line.dropFirst(prefix.count).components(separatedBy: separator)
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    /// Polls the log file at `path` until the line appears (nil after `seconds`); a log that cannot be read is an
    /// error.
    public static func wait(forLogAt path: String, seconds: Double = 30) throws -> (clients: String, workers: String)? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let line = try AnnouncedLine.first(startingWith: prefix, inLogAt: path), let endpoints = parse(line) {
                return endpoints
            }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return nil
    }
}
