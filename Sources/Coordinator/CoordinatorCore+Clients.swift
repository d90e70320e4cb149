import ClusterProtocol
import Foundation
import Generation
import Membership
import Tensor
import Tokenizer
import Transport
import Wire

/// Client messages: submit, status, fetch, cancel; starting accepted jobs.
extension CoordinatorCore {
    // MARK: - Client messages

    func handleClient(_ frames: [ZMQMessage]) {
        let message: WireMessage
        do {
            message = try WireMessage.parse(frames, routingFrames: 1)
        } catch {
            rejectedClient += 1
            if frames.count > 1, let routing = frames.first?.bytes {
                reply(to: routing, .failure(about: nil, error: error))
            }
            return
        }
        let routing = message.routing.first?.bytes ?? []
        let e = message.envelope
        switch MessageKind(rawValue: e.kind) {
        case .submit:
            submit(message, from: routing)
        case .status:
            do {
                let json = String(decoding: try JSONEncoder().encode(status()), as: UTF8.self)
                reply(to: routing, Envelope(kind: MessageKind.statusReport.rawValue, statusJSON: json))
            } catch {
                refuseClient(routing, e, error)
            }
        case .fetch:
            fetch(e.jobID, for: routing)
        case .cancel:
            guard let record = jobs[e.jobID], record.client == routing else {
                refuseClient(routing, e, JobRefusal.unknownJob(e.jobID))
                return
            }
            fail(e.jobID, "job \(e.jobID) was cancelled by its client")
        default:
            refuseClient(routing, e, WorkerMessageError.unexpected(e.kind))
        }
    }

    func refuseClient(_ routing: [UInt8], _ envelope: Envelope?, _ error: any Error) {
        rejectedClient += 1
        reply(to: routing, .failure(about: envelope, error: error))
    }

    /// Sends to a client; a job restarted from the journal has none until `fetch` attaches one. A message that cannot
    /// be framed is a bug in this process: it is logged and counted, and the client's timeout tells it.
    func reply(to routing: [UInt8], _ envelope: Envelope, tensors: [ZMQMessage] = []) {
        guard !routing.isEmpty else { return }
        do {
            let peer = try ZMQMessage(bytes: routing)
            emit(
                WireMessage(routing: [peer], envelope: envelope, tensors: tensors),
                CoordinatorAction.toClient,
                "a kind \(envelope.kind) message to a client"
            )
        } catch {
            unsent += 1
            note("could not address a client: \(error)")
        }
    }

    func submit(_ message: WireMessage, from routing: [UInt8]) {
        let e = message.envelope
        do {
            guard let spec = e.job else { throw JobRefusal.invalid("a submit message carries no job") }
            do {
                try planner.validate(spec.request)
            } catch {
                throw JobRefusal.invalid(error.description)
            }
            guard jobs.count < options.maxJobs else { throw JobRefusal.full(limit: options.maxJobs) }
            let named = Dictionary(zip(e.tensors.map(\.name), message.tensors), uniquingKeysWith: { a, _ in a })
            let png = named["image"]?.bytes
            if spec.mode == .imageToText, png == nil || e.tensors.first(where: { $0.name == "image" })?.dtype != .uint8
            {
                throw JobRefusal.invalid("an image-to-text job carries its PNG as a uint8 tensor named 'image'")
            }
            let noise = try readNoise(e, named["noise"])
            let id = nextJob
            let record = try makeRecord(id: id, spec: spec, noise: noise, client: routing)
            // Journaled before it is acknowledged: an accepted job survives a coordinator restart.
            try journal?.accepted(id, spec: spec, png: spec.mode == .imageToText ? png : nil, noise: noise)
            nextJob += 1
            jobs[id] = record
            reply(
                to: routing,
                Envelope(
                    kind: MessageKind.accepted.rawValue,
                    jobID: id,
                    prompt: spec.prompt,
                    queuedAhead: UInt32(clamping: waiting.count)
                )
            )
            start(id, png: spec.mode == .imageToText ? png : nil)
        } catch {
            refuseClient(routing, e, error)
        }
    }

    /// A job's record, with the scheduler's job prepared (image to text: once its picture is encoded).
    func makeRecord(
        id: UInt64,
        spec: JobSpec,
        noise: (shape: [Int], values: [Float])?,
        client: [UInt8]
    ) throws -> JobRecord {
        var record = JobRecord(
            id: id,
            client: client,
            spec: spec,
            accepted: now,
            phase: .queued,
            detokenizer: StreamingDetokenizer(tokenizer: planner.tokenizer),
            noise: noise.map { Self.nested($0.shape, $0.values) }
        )
        if spec.mode == .imageToText {
            record.phase = .encoding
        } else {
            record.prepared = try planner.plan(id: id, spec.request)
        }
        return record
    }

    /// Starts an accepted job: its picture to the diffusion pool for encoding, or the job to the queue.
    func start(_ id: UInt64, png: [UInt8]?) {
        if let png {
            diffusionPool.add(nextConversion, .encode(job: id, png: png))
            nextConversion += 1
            dispatch()
        } else {
            waiting.append(id)
            startWaitingJobs()
        }
    }

    /// The client's noise, float32 [images, patches, latent], checked against the model.
    func readNoise(_ e: Envelope, _ frame: ZMQMessage?) throws -> (shape: [Int], values: [Float])? {
        guard let frame, let descriptor = e.tensors.first(where: { $0.name == "noise" }) else { return nil }
        let shape = descriptor.shape
        guard descriptor.dtype == .float32, shape.count == 3, shape[1] == planner.patches, shape[2] == planner.latentDim
        else {
            throw JobRefusal.invalid(
                "noise must be float32 [images, \(planner.patches), \(planner.latentDim)], not \(shape)"
            )
        }
        return (shape, frame.array())
    }

    /// `[image][patch][latent]` from a flat [images, patches, latent] array.
    static func nested(_ shape: [Int], _ values: [Float]) -> [[[Float]]] {
        let (patches, width) = (shape[1], shape[2])
        return (0..<shape[0]).map { k in
            (0..<patches).map { i in Array(values[((k * patches + i) * width)..<((k * patches + i + 1) * width)]) }
        }
    }

    /// The diffusion pool encoded an image-to-text job's picture: the job can start.
    func encoded(job id: UInt64, latents: Matrix) {
        guard var record = jobs[id] else { return }
        do {
            record.prepared = try planner.imageQuestionJob(id: id, record.spec.request, latents: latents)
            record.phase = .queued
            jobs[id] = record
            waiting.append(id)
            startWaitingJobs()
        } catch {
            fail(id, "\(error)")
        }
    }

    /// Hands queued jobs to the scheduler once a pipeline is ready.
    func startWaitingJobs() {
        guard pipeline.isReady else { return }
        let ready = waiting
        waiting = []
        for id in ready {
            guard var record = jobs[id], let prepared = record.prepared else { continue }
            record.phase = .running
            jobs[id] = record
            do {
                apply(try scheduler.submit(prepared))
            } catch {
                fail(id, error.description)
            }
        }
    }
}
