import ClusterClient
import ClusterProtocol
import Foundation
import Generation
import Hummingbird
import NIOCore
import Synchronization
import Tensor
import Wire

/// Counts a request's prompt tokens as the cluster will (the same planner), for `usage`.
public struct UsageCounter: Sendable {
    let planner: JobPlanner

    public init(planner: JobPlanner) { self.planner = planner }

    /// The prompt's positions (a picture's patches included); nil when it cannot be planned (the coordinator then
    /// refuses the job and says why).
    func promptTokens(_ spec: JobSpec, picture: Bool) -> Int? {
        let request = spec.request
        do {
            let job =
                picture
                ? try planner.imageQuestionJob(
                    id: 0,
                    request,
                    latents: Matrix(rows: planner.patches, columns: planner.latentDim)
                )
                : try planner.plan(id: 0, request)
            switch job {
            case .text(let text): return text.prompt.count
            case .image(let image): return image.prompt.count
            case .interleaved(let interleaved): return interleaved.prompt.count
            }
        } catch {
            return nil  // the coordinator refuses it with the reason, which is what the client gets
        }
    }

    func tokenLimit(_ spec: JobSpec) -> Int { planner.maxTokens(spec.request) }
}

extension GatewayServer {
    /// `POST /v1/chat/completions`: the whole answer, or (with `stream`) server-sent chunks as tokens come.
    func chatCompletion(_ chat: ChatRequest) async throws -> Response {
        let (spec, picture) = try RequestMapping.job(for: chat, model: model)
        try await requireReady()
        let stream = try client.submit(spec, picture: picture, acceptTimeout: configuration.acceptTimeout)
        let feed = JobFeed(stream)
        // The job is accepted (or refused, with the status that says why) before any byte of the answer goes out.
        let accepted = try await feed.accepted()
        let id = "chatcmpl-\(accepted)"
        let created = Int(Date().timeIntervalSince1970)
        let promptTokens = usage.promptTokens(spec, picture: picture != nil) ?? 0
        let limit = usage.tokenLimit(spec)
        if chat.stream == true {
            return streamedChat(
                feed,
                id: id,
                created: created,
                includeUsage: chat.stream_options?.include_usage ?? false,
                interleaved: spec.mode == .interleaved,
                promptTokens: promptTokens,
                limit: limit
            )
        }
        var outcome = JobOutcome()
        // Generated positions: tokens (the progress count) and patches (an interleaved answer's limit counts both).
        var (tokens, patches) = (0, 0)
        for try await message in feed.rest {
            switch message {
            case .text(_, _, let count): tokens = max(tokens, count)
            case .patches: patches += 1
            default: break
            }
            if outcome.add(message) { break }
        }
        let generated = tokens + patches
        let content: AnswerContent =
            spec.mode == .interleaved
            ? .parts(
                outcome.pieces.map {
                    switch $0 {
                    case .text(let text): .text(text)
                    case .image(let png, _): .image(png: png)
                    }
                }
            )
            : .text(outcome.text)
        return json(
            ChatCompletion(
                id: id,
                created: created,
                model: configuration.modelID,
                choices: [
                    .init(message: .init(content: content), finish_reason: generated >= limit ? "length" : "stop")
                ],
                usage: Usage(
                    prompt_tokens: promptTokens,
                    completion_tokens: generated,
                    total_tokens: promptTokens + generated
                )
            )
        )
    }

    /// Server-sent events in OpenAI's chunk format: the role, each piece of text as it is decoded, the finish reason,
    /// usage when asked, then `data: [DONE]`. An interleaved answer's text runs and pictures (an `image_url` part in
    /// the delta's content) come in order as the cluster decodes them, at the end, with a comment line per patch
    /// sampled before (clients ignore comments; proxies see the stream alive). A failure after the answer began is an
    /// event with OpenAI's error body (its SDKs raise it). A client that goes away cancels its job.
    func streamedChat(
        _ feed: JobFeed,
        id: String,
        created: Int,
        includeUsage: Bool,
        interleaved: Bool,
        promptTokens: Int,
        limit: Int
    ) -> Response {
        let model = configuration.modelID
        func chunk(_ delta: ChatChunk.Choice.Delta, finish: String? = nil) -> ChatChunk {
            ChatChunk(id: id, created: created, model: model, choices: [.init(delta: delta, finish_reason: finish)])
        }
        let events = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            let task = Task {
                // Generated positions: tokens (the progress count) and, in an interleaved answer, patches.
                var (tokens, patches) = (0, 0)
                var generated: Int { tokens + patches }
                do {
                    continuation.yield(Self.event(chunk(.init(role: "assistant", content: .text("")))))
                    for try await message in feed.rest {
                        switch message {
                        case .text(_, let piece, let count):
                            tokens = max(tokens, count)
                            if !piece.isEmpty { continuation.yield(Self.event(chunk(.init(content: .text(piece))))) }
                        case .patches(_, let image, let done, let total, _) where interleaved:
                            patches += 1
                            continuation.yield(ByteBuffer(string: ": image \(image) patch \(done)/\(total)\n\n"))
                        case .answerText(_, let text) where !text.isEmpty:
                            continuation.yield(Self.event(chunk(.init(content: .text(text)))))
                        case .image(_, _, let png, _):
                            continuation.yield(Self.event(chunk(.init(content: .parts([.image(png: png)])))))
                        case .finished(_, let rest):
                            if !rest.isEmpty { continuation.yield(Self.event(chunk(.init(content: .text(rest))))) }
                            let reason = generated >= limit ? "length" : "stop"
                            continuation.yield(Self.event(chunk(.init(), finish: reason)))
                            if includeUsage {
                                var last = ChatChunk(id: id, created: created, model: model, choices: [])
                                last.usage = Usage(
                                    prompt_tokens: promptTokens,
                                    completion_tokens: generated,
                                    total_tokens: promptTokens + generated
                                )
                                continuation.yield(Self.event(last))
                            }
                            continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
                        default: continue
                        }
                    }
                } catch {
                    // The answer began: the failure is an event with OpenAI's error body (its SDKs raise it).
                    continuation.yield(Self.event(APIError.from(error).body))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return Self.eventStream(events, feed: feed)
    }

    /// `POST /v1/images/generations`: `n` text-to-image jobs at once; each PNG as base64, or as a URL of this
    /// gateway's `/v1/files/{id}`.
    func imageGeneration(_ images: ImageRequest) async throws -> Response {
        let specs = try RequestMapping.jobs(for: images, model: model)
        try await requireReady()
        if images.stream == true { return try await streamedImage(specs[0], partialImages: images.partial_images ?? 0) }
        let pngs = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, spec) in specs.enumerated() {
                group.addTask {
                    let outcome = try await client.submit(spec, acceptTimeout: configuration.acceptTimeout).collect()
                    guard case .image(let png, _)? = outcome.pieces.first else {
                        throw APIError(status: 500, message: "the job ended without an image", type: "server_error")
                    }
                    return (index, png)
                }
            }
            var pngs = [[UInt8]](repeating: [], count: specs.count)
            for try await (index, png) in group { pngs[index] = png }
            return pngs
        }
        let asURL = images.response_format == "url"
        return json(
            ImagesResponse(
                created: Int(Date().timeIntervalSince1970),
                data: pngs.map { png in
                    asURL
                        ? .init(url: "/v1/files/" + files.keep(png))
                        : .init(b64_json: Data(png).base64EncodedString())
                }
            )
        )
    }

    /// One server-sent event holding `value` as JSON, named `name` when given. This file's types always encode; if
    /// one did not, the event says so in OpenAI's error form instead of ending the stream silently.
    static func event(_ value: some Encodable, name: String? = nil) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        do {
            let data = "data: " + String(decoding: try encoder.encode(value), as: UTF8.self) + "\n\n"
            return ByteBuffer(string: name.map { "event: \($0)\n" + data } ?? data)
        } catch {
            return ByteBuffer(
                string:
                    "data: {\"error\":{\"message\":\"an answer could not be encoded\",\"type\":\"server_error\"}}\n\n"
            )
        }
    }
}

/// A job's stream split in two: its acceptance (or refusal), awaited before the HTTP answer starts, and the rest.
struct JobFeed: Sendable {
    let rest: AsyncThrowingStream<ClientMessage, any Error>
    private let first: AsyncThrowingStream<ClientMessage, any Error>
    private let stream: JobStream
    private let job = JobNumber()

    final class JobNumber: Sendable {
        let value = Mutex<UInt64>(0)
    }

    init(_ stream: JobStream) {
        self.stream = stream
        let (first, firstOut) = AsyncThrowingStream.makeStream(of: ClientMessage.self)
        let (rest, restOut) = AsyncThrowingStream.makeStream(of: ClientMessage.self)
        self.first = first
        self.rest = rest
        Task {
            var isFirst = true
            do {
                for try await message in stream {
                    if isFirst {
                        firstOut.yield(message)
                        firstOut.finish()
                        isFirst = false
                    } else {
                        restOut.yield(message)
                    }
                }
                firstOut.finish()
                restOut.finish()
            } catch {
                firstOut.finish(throwing: error)
                restOut.finish(throwing: error)
            }
        }
    }

    /// The job's id once the coordinator accepted it; its refusal is thrown.
    func accepted() async throws -> UInt64 {
        for try await message in first {
            if case .accepted(let id, _, _) = message {
                job.value.withLock { $0 = id }
                return id
            }
        }
        throw ClientError.closed(stream.endpoint)
    }

    /// Asks the coordinator to stop the job (its client left).
    func cancel() {
        let id = job.value.withLock { $0 }
        guard id != 0 else { return }
        do {
            try stream.cancel(job: id)
        } catch {
            return  // the connection is already gone: the coordinator drops the job's stream by itself
        }
        stream.close()
    }
}
