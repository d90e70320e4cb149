import ClusterClient
import ClusterProtocol
import Foundation
import Hummingbird
import ImageIO
import NIOCore
import Runtime
import Wire

extension GatewayServer {
    /// `POST /v1/images/generations` with `stream`: server-sent `image_generation.partial_image` events, each the
    /// patches finished so far decoded to a PNG (the rest blank), then `image_generation.completed` with the finished
    /// image, the same bytes as without `stream`. A failure after the stream began is an `error` event with OpenAI's
    /// error body; a client that goes away cancels its job.
    func streamedImage(_ spec: JobSpec, partialImages: Int) async throws -> Response {
        let feed = JobFeed(try client.submit(spec, acceptTimeout: configuration.acceptTimeout))
        _ = try await feed.accepted()
        let promptTokens = usage.promptTokens(spec, picture: false) ?? 0
        let size = "\(decoder.resolution)x\(decoder.resolution)"
        let (decoder, decoding) = (decoder, decoding)
        let events = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            let task = Task {
                var partials = PartialImages(total: decoder.patchCount, count: partialImages)
                func event(
                    _ type: String,
                    png: [UInt8],
                    index: Int? = nil,
                    usage: ImageStreamEvent.ImageUsage? = nil
                )
                    -> ByteBuffer
                {
                    let value = ImageStreamEvent(
                        type: type,
                        b64_json: Data(png).base64EncodedString(),
                        created_at: Int(Date().timeIntervalSince1970),
                        size: size,
                        partial_image_index: index,
                        usage: usage
                    )
                    return Self.event(value, name: type)
                }
                do {
                    for try await message in feed.rest {
                        switch message {
                        case .patches(_, _, let done, _, let latent):
                            guard let index = partials.add(done: done, latent: latent) else { continue }
                            let known = partials
                            let png = try await decoding.run { Array(try PNGCodec.encode(known.picture(decoder))) }
                            continuation.yield(event("image_generation.partial_image", png: png, index: index))
                        case .image(_, _, let png, let latents):
                            let usage = ImageStreamEvent.ImageUsage(
                                input_tokens: promptTokens,
                                input_tokens_details: .init(text_tokens: promptTokens),
                                output_tokens: latents.count,
                                total_tokens: promptTokens + latents.count
                            )
                            continuation.yield(event("image_generation.completed", png: png, usage: usage))
                        default: continue
                        }
                    }
                } catch {
                    continuation.yield(Self.event(APIError.from(error).body, name: "error"))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return Self.eventStream(events, feed: feed)
    }

    /// A `text/event-stream` response of `events`; the job is cancelled when the HTTP client goes away.
    static func eventStream(_ events: AsyncThrowingStream<ByteBuffer, any Error>, feed: JobFeed) -> Response {
        let body = ResponseBody { writer in
            do {
                try await writer.write(events)
            } catch {
                feed.cancel()  // the HTTP client went away: its job is stopped
                throw error
            }
            try await writer.finish(nil)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: body)
    }
}
