import Foundation

/// A line a process prints to its log once it is ready ("serving NAME on http://HOST:PORT", "metrics on ...", the
/// coordinator's endpoints): launchers start processes on free ports and read the address back from the log.
public enum AnnouncedLine {
    /// The first line of the log at `path` that starts with `prefix`; nil while there is none, including while the
    /// log does not exist yet (the process has not started writing). Any other read error is thrown.
    public static func first(startingWith prefix: String, inLogAt path: String) throws -> Substring? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }
    }
}
