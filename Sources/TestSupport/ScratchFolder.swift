import Foundation

/// A fresh folder under the system's temporary directory for one test's files, removed with everything in it when the
/// value goes away. Every test that writes files takes its folder from here.
public final class ScratchFolder: Sendable {
    public let path: String

    /// Creates `<tmp>/orthus-<label>-<uuid>`.
    public init(_ label: String) throws {
        path = NSTemporaryDirectory() + "orthus-\(label)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the folder.
    public func file(_ name: String) -> String { path + "/" + name }

    deinit {
        // Cleanup after a test; a file still open elsewhere must not fail the test that made it.
        try? FileManager.default.removeItem(atPath: path)
    }
}
