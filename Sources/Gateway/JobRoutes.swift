import ClusterClient
import ClusterProtocol
import Foundation
import Hummingbird
import NIOCore
import Wire

/// `/v1/jobs/{id}`: a job's state, its progress as server-sent events, and its cancellation. The id is the cluster's
/// job number (a chat completion `chatcmpl-7` is job 7).
extension GatewayServer {
    struct JobState: Encodable {
        var id: UInt64
        var object = "job"
        var mode: String
        /// queued, encoding, running or decoding.
        var phase: String
        var tokens: Int
        var patches: Int
        var seconds: Double
    }

    /// One event of a job's progress.
    struct JobEvent: Encodable {
        var type: String
        var text: String?
        var tokens: Int?
        var image: Int?
        var done: Int?
        var total: Int?
        var url: String?
        var reason: String?
    }

    func addJobRoutes(to router: Router<GatewayContext>) {
        router.get("/v1/jobs/{id}") { _, context in
            await respond {
                let id = try Self.jobNumber(context)
                let report = try await client.status(timeout: .seconds(5))
                guard let row = report.jobs.first(where: { $0.id == id }) else {
                    throw APIError.notFound("job \(id) is not running (it ended, or never was)")
                }
                return json(
                    JobState(
                        id: row.id,
                        mode: row.mode,
                        phase: row.phase,
                        tokens: row.tokens,
                        patches: row.patches,
                        seconds: row.seconds
                    )
                )
            }
        }
        router.get("/v1/jobs/{id}/events") { _, context in
            await respond {
                let id = try Self.jobNumber(context)
                let feed = JobFeed(try client.fetch(job: id, timeout: configuration.acceptTimeout))
                _ = try await feed.accepted()
                return jobEvents(feed)
            }
        }
        router.delete("/v1/jobs/{id}") { _, context in
            await respond {
                let id = try Self.jobNumber(context)
                // Cancelling takes a connection that follows the job: a fetch, then the cancel on it.
                let stream = try client.fetch(job: id, timeout: configuration.acceptTimeout)
                defer { stream.close() }
                do {
                    for try await message in stream {
                        if case .accepted = message { try stream.cancel(job: id) }
                        if case .finished = message { throw APIError.notFound("job \(id) has already finished") }
                    }
                } catch ClientError.refused(let reason) where reason.contains("was cancelled") {
                    return json(["id": "\(id)", "object": "job", "deleted": "true"])
                } catch ClientError.refused(let reason) where reason.hasPrefix("no job") {
                    throw APIError.notFound(reason)
                }
                throw APIError(status: 500, message: "the cancel of job \(id) was not confirmed", type: "server_error")
            }
        }
    }

    /// The job's progress as server-sent events: text pieces, patches done, images (as data URLs), then finished or
    /// failed.
    func jobEvents(_ feed: JobFeed) -> Response {
        let events = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            let task = Task {
                do {
                    for try await message in feed.rest {
                        switch message {
                        case .text(_, let piece, let tokens):
                            continuation.yield(Self.event(JobEvent(type: "text", text: piece, tokens: tokens)))
                        case .answerText(_, let text):
                            continuation.yield(Self.event(JobEvent(type: "text", text: text)))
                        case .patches(_, let image, let done, let total, _):
                            continuation.yield(
                                Self.event(JobEvent(type: "patches", image: image, done: done, total: total))
                            )
                        case .image(_, let index, let png, _):
                            let url = "data:image/png;base64," + Data(png).base64EncodedString()
                            continuation.yield(Self.event(JobEvent(type: "image", image: index, url: url)))
                        case .finished(_, let rest):
                            continuation.yield(Self.event(JobEvent(type: "finished", text: rest)))
                        default: continue
                        }
                    }
                } catch {
                    continuation.yield(Self.event(JobEvent(type: "failed", reason: APIError.from(error).message)))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                try await writer.write(events)
                try await writer.finish(nil)
            }
        )
    }

    static func jobNumber(_ context: GatewayContext) throws -> UInt64 {
        let text = context.parameters.get("id") ?? ""
        let digits = text.hasPrefix("chatcmpl-") ? String(text.dropFirst("chatcmpl-".count)) : text
        guard let id = UInt64(digits), id > 0 else {
            throw APIError.invalid("'\(text)' is not a job id (a number, or chatcmpl-N)", param: "id")
        }
        return id
    }
}
