import Foundation
import Tensor
import Wire

/// The coordinator's job journal (`--journal DIR`): every accepted job is written down before it is acknowledged,
/// and its result when it ends, so a restarted coordinator runs unfinished jobs again (same seed, same output) and
/// still serves finished results to `orthus fetch`.
///
///     DIR/<id>/spec.json     the job as submitted
///     DIR/<id>/input.png     image to text: the picture
///     DIR/<id>/noise.npy     the client's noise, when given
///     DIR/<id>/result.json   written when the job ends: finished (text, pieces) or failed (reason)
///     DIR/<id>/image-K.png, latents-K.npy   its images
struct JobJournal {
    let folder: String

    /// A job's outcome as the journal keeps it.
    struct Result: Codable {
        enum Piece: Codable {
            case text(String)
            case image(Int)
        }
        var failed: String?
        /// Text jobs: everything streamed; image jobs: nothing.
        var text: String
        var pieces: [Piece]
    }

    /// A journaled job that had not ended.
    struct Unfinished {
        var id: UInt64
        var spec: JobSpec
        var png: [UInt8]?
        var noise: (shape: [Int], values: [Float])?
        /// The submitting client's public key (empty without keys).
        var owner: String
    }

    init(folder: String) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    private func path(_ id: UInt64, _ name: String) -> String { folder + "/\(id)/" + name }

    func accepted(
        _ id: UInt64,
        spec: JobSpec,
        owner: String,
        png: [UInt8]?,
        noise: (shape: [Int], values: [Float])?
    ) throws {
        try FileManager.default.createDirectory(atPath: folder + "/\(id)", withIntermediateDirectories: true)
        try Self.syncFolder(of: folder + "/\(id)")  // the job's folder entry itself
        if let png { try write(Data(png), to: path(id, "input.png")) }
        if let noise { try write(NumpyFile.encode(noise.values, shape: noise.shape), to: path(id, "noise.npy")) }
        // The spec goes last: a job folder without one was never acknowledged and is ignored.
        try write(try JSONEncoder().encode(StoredSpec(spec, owner: owner)), to: path(id, "spec.json"))
    }

    func finished(
        _ id: UInt64,
        text: String,
        pieces: [Result.Piece],
        images: [(png: [UInt8], latents: [[Float]])]
    )
        throws
    {
        for (index, image) in images.enumerated() {
            try write(Data(image.png), to: path(id, "image-\(index).png"))
            let width = image.latents.first?.count ?? 0
            try write(
                NumpyFile.encode(image.latents.flatMap { $0 }, shape: [image.latents.count, width]),
                to: path(id, "latents-\(index).npy")
            )
        }
        try write(try JSONEncoder().encode(Result(text: text, pieces: pieces)), to: path(id, "result.json"))
    }

    func failed(_ id: UInt64, reason: String) throws {
        try write(
            try JSONEncoder().encode(Result(failed: reason, text: "", pieces: [])),
            to: path(id, "result.json")
        )
    }

    /// A job's spec, as submitted, and who submitted it; nil for a job the journal never had.
    func stored(_ id: UInt64) throws -> (spec: JobSpec, owner: String)? {
        guard let data = FileManager.default.contents(atPath: path(id, "spec.json")) else { return nil }
        do {
            let stored = try JSONDecoder().decode(StoredSpec.self, from: data)
            guard let spec = stored.spec else { throw JobRefusal.failed("unknown job mode \(stored.mode)") }
            return (spec, stored.owner ?? "")
        } catch {
            throw JobRefusal.failed("the journal's \(path(id, "spec.json")) is unreadable: \(error)")
        }
    }

    /// A job's result; nil while it has not ended (or was never journaled).
    func result(_ id: UInt64) throws -> Result? {
        guard let data = FileManager.default.contents(atPath: path(id, "result.json")) else { return nil }
        do {
            return try JSONDecoder().decode(Result.self, from: data)
        } catch {
            throw JobRefusal.failed("the journal's \(path(id, "result.json")) is unreadable: \(error)")
        }
    }

    /// Image `index` of a finished job.
    func image(_ id: UInt64, _ index: Int) throws -> (png: [UInt8], latents: (shape: [Int], values: [Float])) {
        guard let png = FileManager.default.contents(atPath: path(id, "image-\(index).png")) else {
            throw JobRefusal.failed("the journal has lost image \(index) of job \(id)")
        }
        return (Array(png), try NumpyFile.read(path(id, "latents-\(index).npy")))
    }

    /// Every journaled job id, those not yet ended with what is needed to run them again, and why any job's files
    /// could not be read (that job is left out; the others are restored).
    func load() throws -> (ids: [UInt64], unfinished: [Unfinished], unreadable: [String]) {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        var ids: [UInt64] = []
        var unfinished: [Unfinished] = []
        var unreadable: [String] = []
        for id in names.compactMap(UInt64.init).sorted() {
            do {
                guard let (spec, owner) = try stored(id) else { continue }
                ids.append(id)
                guard try result(id) == nil else { continue }
                let png = FileManager.default.contents(atPath: path(id, "input.png")).map(Array.init)
                let noise =
                    FileManager.default.fileExists(atPath: path(id, "noise.npy"))
                    ? try NumpyFile.read(path(id, "noise.npy")) : nil
                unfinished.append(Unfinished(id: id, spec: spec, png: png, noise: noise, owner: owner))
            } catch {
                ids.append(id)  // its id stays taken
                unreadable.append("job \(id): \(error)")
            }
        }
        return (ids, unfinished, unreadable)
    }

    /// Writes through a temporary file and a rename, so a crash never leaves half a file, and makes it durable before
    /// returning: the file's data is synced before the rename (so the name never points at unwritten data after a
    /// power loss), and its folder after it (so the rename itself survives). A job is acknowledged only after this.
    private func write(_ data: Data, to path: String) throws {
        let temporary = path + ".partial"
        func failure(_ what: String) -> JobRefusal {
            JobRefusal.failed("cannot \(what) the journal file \(path): \(String(cString: strerror(errno)))")
        }
        let file = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw failure("create") }
        defer { close(file) }
        let written = data.withUnsafeBytes { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let count = Foundation.write(file, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        guard written else { throw failure("write") }
        guard fsync(file) == 0 else { throw failure("sync") }
        guard rename(temporary, path) == 0 else { throw failure("rename") }
        try Self.syncFolder(of: path)
    }

    /// Syncs the folder holding `path`, so an entry created or renamed in it survives a power loss.
    static func syncFolder(of path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let handle = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard handle >= 0 else {
            throw JobRefusal.failed("cannot open the journal folder \(folder): \(String(cString: strerror(errno)))")
        }
        defer { close(handle) }
        guard fsync(handle) == 0 else {
            throw JobRefusal.failed("cannot sync the journal folder \(folder): \(String(cString: strerror(errno)))")
        }
    }
}

/// Reads a journal folder as a restarted coordinator would: every job's spec, the result of those that ended and the
/// files of those that did not. Unreadable files are reported by job, never fatal (used to fuzz the journal's
/// readers, and to check a folder by hand).
public enum JournalReader {
    public static func read(folder: String) throws -> (jobs: Int, unfinished: Int, unreadable: [String]) {
        let journal = try JobJournal(folder: folder)
        let (ids, unfinished, unreadable) = try journal.load()
        var problems = unreadable
        for id in ids {
            do {
                _ = try journal.result(id)
            } catch {
                problems.append("job \(id): \(error)")
            }
        }
        return (ids.count, unfinished.count, problems)
    }
}

/// `JobSpec` as JSON in the journal.
private struct StoredSpec: Codable {
    var mode: UInt32
    var prompt: String
    var maxTokens: Int
    var temperature: Float
    var topK: Int
    var topP: Float
    var seed: UInt64
    /// Absent: the model's default.
    var guidance: Float?
    var steps: Int
    /// The submitting client's public key; absent in journals written before keys had roles.
    var owner: String?
    /// The client's id for the submission; absent in older journals.
    var submission: UInt64?

    init(_ spec: JobSpec, owner: String) {
        self.owner = owner
        mode = spec.mode.rawValue
        prompt = spec.prompt
        maxTokens = spec.maxTokens
        temperature = spec.temperature
        topK = spec.topK
        topP = spec.topP
        seed = spec.seed
        guidance = spec.guidance
        steps = spec.steps
        submission = spec.submission
    }

    var spec: JobSpec? {
        JobMode(rawValue: mode).map {
            JobSpec(
                mode: $0,
                prompt: prompt,
                maxTokens: maxTokens,
                temperature: temperature,
                topK: topK,
                topP: topP,
                seed: seed,
                guidance: guidance,
                steps: steps,
                submission: submission ?? 0
            )
        }
    }
}
