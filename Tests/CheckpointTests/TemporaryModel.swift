import Foundation
import TestSupport

/// A scratch copy of a fixture model folder that tests may damage; removed on deinit.
final class TemporaryModel {
    let scratch: ScratchFolder
    let path: String

    init(copying source: String) throws {
        scratch = try ScratchFolder("model")
        path = scratch.file("model")
        try FileManager.default.copyItem(atPath: source, toPath: path)
    }

    init(empty: Void = ()) throws {
        scratch = try ScratchFolder("model")
        path = scratch.path
    }

    func file(_ name: String) -> String { path + "/" + name }

    func read(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file(name))) }

    func write(_ name: String, _ data: Data) throws { try data.write(to: URL(fileURLWithPath: file(name))) }

    /// Edits config.json as a JSON object.
    func editConfig(_ edit: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: read("config.json")) as! [String: Any]
        edit(&object)
        try write("config.json", JSONSerialization.data(withJSONObject: object))
    }
}
