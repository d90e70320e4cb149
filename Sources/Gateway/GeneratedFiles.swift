import Synchronization

/// Generated images served at `/v1/files/{id}` for `response_format: url`: the newest `capacity` in memory (a
/// client fetches its image right after the answer; older ones are gone, so the store cannot grow).
final class GeneratedFiles: Sendable {
    private struct Store {
        var files: [String: [UInt8]] = [:]
        var order: [String] = []
    }

    private let store = Mutex(Store())
    let capacity: Int

    init(capacity: Int = 64) { self.capacity = capacity }

    /// Keeps a PNG; returns its id (random, so ids cannot be guessed from one another).
    func keep(_ png: [UInt8]) -> String {
        let id = "file-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        store.withLock { store in
            store.files[id] = png
            store.order.append(id)
            if store.order.count > capacity { store.files[store.order.removeFirst()] = nil }
        }
        return id
    }

    func png(_ id: String) -> [UInt8]? { store.withLock { $0.files[id] } }
}
