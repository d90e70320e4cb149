import ClusterProtocol
import Foundation
import Generation
import Transport
import Wire

extension CoordinatorCore {
    /// Runs the journal's unfinished jobs again (no client yet: `fetch` attaches one) and continues its job ids.
    func restoreJournal() {
        guard let journal else { return }
        do {
            let (ids, unfinished, unreadable) = try journal.load()
            for problem in unreadable { note("journal: \(problem); it is not restarted") }
            nextJob = (ids.max() ?? 0) + 1
            for job in unfinished {
                jobs[job.id] = try makeRecord(id: job.id, spec: job.spec, noise: job.noise, client: [])
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

    /// A client asks for a job's results: a running job streams to it from now on (after the text so far); an
    /// ended one is replayed from the journal.
    func fetch(_ id: UInt64, for client: [UInt8]) {
        if var record = jobs[id] {
            record.client = client
            jobs[id] = record
            reply(to: client, .accepted(job: id, prompt: record.spec.prompt, queuedAhead: 0))
            if !record.streamed.isEmpty {
                reply(to: client, .text(job: id, piece: record.streamed, tokens: record.tokens))
            }
            return
        }
        let result: JobJournal.Result?
        let spec: JobSpec?
        do {
            result = try journal?.result(id)
            spec = try journal?.spec(id)
        } catch {
            refuseClient(client, job: id, error)
            return
        }
        guard let journal, let result else {
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
