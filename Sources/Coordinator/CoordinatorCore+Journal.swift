import ClusterProtocol
import Foundation
import Generation
import Transport
import Wire

extension CoordinatorCore {
    /// Connections one job streams to at most.
    static let maxWatchers = 8

    /// Runs the journal's unfinished jobs again (no client yet: `fetch` attaches one) and continues its job ids.
    func restoreJournal() {
        guard let journal else { return }
        do {
            let (ids, unfinished, unreadable) = try journal.load()
            for problem in unreadable { note("journal: \(problem); it is not restarted") }
            nextJob = (ids.max() ?? 0) + 1
            for job in unfinished {
                var record = try makeRecord(id: job.id, spec: job.spec, noise: job.noise, client: [], owner: job.owner)
                // Counted, never refused: these were accepted before the restart.
                record.inputBytes = (job.png?.count ?? 0) + (job.noise?.values.count ?? 0) * MemoryLayout<Float>.size
                jobs[job.id] = record
                submissions.record(owner: job.owner, submission: job.spec.submission, job: job.id)
                start(job.id, png: job.png)
            }
            if !ids.isEmpty { note("journal: \(ids.count) job(s), \(unfinished.count) restarted") }
        } catch {
            note("journal \(journal.folder) could not be read: \(error)")
        }
    }

    /// Records how a job ended; a journal that cannot be written is reported, not fatal to the job.
    func journalEnd(_ job: UInt64, _ write: (JobJournal) throws -> Void) {
        guard let journal else { return }
        do { try write(journal) } catch { note("journal: job \(job): \(error)") }
    }

    /// A client asks for a job's results: a running job streams to it from now on (after the text so far) as well
    /// as to whoever followed it already; an ended one is replayed from the journal. Another client's job is
    /// unknown to it.
    func fetch(_ id: UInt64, for client: [UInt8], peer: PeerIdentity) {
        if var record = jobs[id] {
            guard may(peer, actOn: record.owner) else {
                refuseClient(client, job: id, JobRefusal.unknownJob(id))
                return
            }
            if !record.watchers.contains(client) { record.watchers.append(client) }
            if record.watchers.count > Self.maxWatchers { record.watchers.removeFirst() }
            jobs[id] = record
            reply(to: client, .accepted(job: id, prompt: record.spec.prompt, queuedAhead: 0))
            if !record.streamed.isEmpty {
                reply(to: client, .text(job: id, piece: record.streamed, tokens: record.tokens))
            }
            return
        }
        let result: JobJournal.Result?
        let stored: (spec: JobSpec, owner: String)?
        do {
            stored = try journal?.stored(id)
            result = stored == nil ? nil : try journal?.result(id)
        } catch {
            refuseClient(client, job: id, error)
            return
        }
        let spec = stored?.spec
        guard let journal, let result, let stored, may(peer, actOn: stored.owner) else {
            refuseClient(client, job: id, JobRefusal.unknownJob(id))
            return
        }
        if let reason = result.failed {
            reply(to: client, .failure(job: id, reason: reason))
            return
        }
        reply(to: client, .accepted(job: id, prompt: spec?.prompt ?? "", queuedAhead: 0))
        if !result.text.isEmpty { reply(to: client, .text(job: id, piece: result.text, tokens: 0)) }
        do {
            for piece in result.pieces {
                switch piece {
                case .text(let text):
                    reply(to: client, .answerText(job: id, text: text))
                case .image(let index):
                    let image = try journal.image(id, index)
                    let width = image.latents.shape.last ?? 0
                    let latents = stride(from: 0, to: image.latents.values.count, by: max(width, 1)).map {
                        Array(image.latents.values[$0..<($0 + width)])
                    }
                    try replyOrThrow(to: client, .image(job: id, index: index, png: image.png, latents: latents))
                }
            }
            reply(to: client, .finished(job: id, rest: ""))
        } catch {
            reply(to: client, .failure(job: id, reason: "\(error)"))
        }
    }
}
