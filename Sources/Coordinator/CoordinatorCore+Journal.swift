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
            reply(to: client, Envelope(kind: MessageKind.accepted.rawValue, jobID: id, prompt: record.spec.prompt))
            if !record.streamed.isEmpty {
                reply(
                    to: client,
                    Envelope(
                        kind: MessageKind.text.rawValue,
                        jobID: id,
                        answerText: record.streamed,
                        progressDone: UInt32(clamping: record.tokens)
                    )
                )
            }
            return
        }
        let result: JobJournal.Result?
        let spec: JobSpec?
        do {
            result = try journal?.result(id)
            spec = try journal?.spec(id)
        } catch {
            reply(to: client, .failure(about: Envelope(kind: 0, jobID: id), error: error))
            return
        }
        guard let journal, let result else {
            reply(to: client, .failure(about: Envelope(kind: 0, jobID: id), error: JobRefusal.unknownJob(id)))
            rejectedClient += 1
            return
        }
        if let reason = result.failed {
            reply(to: client, Envelope(kind: Envelope.failureKind, jobID: id, error: reason))
            return
        }
        reply(to: client, Envelope(kind: MessageKind.accepted.rawValue, jobID: id, prompt: spec?.prompt ?? ""))
        if !result.text.isEmpty {
            reply(to: client, Envelope(kind: MessageKind.text.rawValue, jobID: id, answerText: result.text))
        }
        do {
            for piece in result.pieces {
                switch piece {
                case .text(let text):
                    reply(to: client, Envelope(kind: MessageKind.piece.rawValue, jobID: id, answerText: text))
                case .image(let index):
                    let image = try journal.image(id, index)
                    reply(
                        to: client,
                        Envelope(
                            kind: MessageKind.image.rawValue,
                            jobID: id,
                            tensors: [
                                TensorDescriptor(name: "png", dtype: .uint8, shape: [image.png.count]),
                                TensorDescriptor(name: "latents", dtype: .float32, shape: image.latents.shape),
                            ],
                            imageIndex: UInt32(clamping: index)
                        ),
                        tensors: [try ZMQMessage(bytes: image.png), try ZMQMessage(borrowing: image.latents.values)]
                    )
                }
            }
            reply(to: client, Envelope(kind: MessageKind.finished.rawValue, jobID: id))
        } catch {
            reply(to: client, Envelope(kind: Envelope.failureKind, jobID: id, error: "\(error)"))
        }
    }
}
