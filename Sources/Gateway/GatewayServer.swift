import ClusterClient
import ClusterProtocol
import Foundation
import Hummingbird
import Logging
import NIOCore
import Runtime
import Synchronization
import Telemetry
import VQVAE

/// `orthus serve`: OpenAI-compatible HTTP in front of a coordinator. Each request becomes cluster jobs through
/// `ClusterClient`, as `orthus submit` sends them, so an answer is the same bytes `submit` and `generate` give.
public struct GatewayServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0: any free port (the address is printed once bound).
        public var port = 8000
        /// The id clients name in `model`.
        public var modelID: String
        /// Accepted bearer keys; nil accepts any request.
        public var apiKeys: Set<String>?
        /// How long a job may wait for the coordinator's acceptance.
        public var acceptTimeout: Duration = .seconds(30)

        public init(modelID: String) { self.modelID = modelID }
    }

    let configuration: Configuration
    let client: ClusterClient
    let usage: UsageCounter
    let files: GeneratedFiles
    /// The model's VQ decoder, for the partial pictures of streamed image generations (the finished ones are decoded
    /// by the diffusion pool), and the thread it runs on: a decode is compute, kept off the threads that serve HTTP.
    let decoder: VQDecoder
    let decoding = SerialThread(name: "vq-decode")
    private let readiness = Readiness()

    /// The last readiness answer and when it came.
    final class Readiness: Sendable {
        let known = Mutex<(at: ContinuousClock.Instant, ready: Bool)?>(nil)
    }

    public init(configuration: Configuration, client: ClusterClient, usage: UsageCounter, decoder: VQDecoder) {
        self.configuration = configuration
        self.client = client
        self.usage = usage
        self.decoder = decoder
        files = GeneratedFiles()
    }

    var model: ServedModel {
        ServedModel(id: configuration.modelID, imageSide: decoder.resolution, patches: decoder.patchCount)
    }

    /// Serves until SIGINT or SIGTERM; `bound` is told the address once the socket is listening.
    public func run(bound: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        Telemetry.bootstrap()
        let router = Router(context: GatewayContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: APIKeyCheck(keys: configuration.apiKeys))
        addRoutes(to: router)
        addJobRoutes(to: router)
        try addPlaygroundRoutes(to: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in
                bound("http://\(configuration.host):\(channel.localAddress?.port ?? configuration.port)")
            },
            logger: Logger(label: "orthus-serve")
        )
        try await app.runService()
    }

    func addRoutes(to router: Router<GatewayContext>) {
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok,
                headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: Telemetry.exposition()))
            )
        }
        router.get("/health") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
        router.get("/ready") { _, _ in await respond { try await ready() } }
        router.get("/v1/models") { _, _ in
            await respond {
                json(ModelList(data: [.init(id: configuration.modelID, created: Self.started)]))
            }
        }
        router.post("/v1/chat/completions") { request, context in
            await respond {
                let chat = try await decode(ChatRequest.self, request, context)
                return try await chatCompletion(chat)
            }
        }
        router.post("/v1/images/generations") { request, context in
            await respond {
                let images = try await decode(ImageRequest.self, request, context)
                return try await imageGeneration(images)
            }
        }
        router.get("/v1/files/{id}") { _, context in
            await respond {
                let id = context.parameters.get("id") ?? ""
                guard let png = files.png(id) else {
                    throw APIError.notFound("no file \(id) (files are kept for a while)")
                }
                var headers = HTTPFields()
                headers[.contentType] = "image/png"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: png)))
            }
        }
    }

    /// `GET /ready`: 200 once the cluster has a complete pipeline and both pools, else 503 with what is missing.
    func ready() async throws -> Response {
        let report = try await client.status(timeout: .seconds(3))
        guard report.ready else { throw APIError.notReady }
        return json(["status": "ready"])
    }

    /// Jobs are sent only to a ready cluster: otherwise they would wait, unbounded, for a pipeline; an HTTP client
    /// gets 503 and Retry-After instead.
    func requireReady() async throws {
        // A ready answer is reused for a second; a not-ready one is asked again (the cluster may be ready now).
        if let known = readiness.known.withLock({ $0 }), known.ready, ContinuousClock.now - known.at < .seconds(1) {
            return
        }
        let ready = try await client.status(timeout: .seconds(3)).ready
        readiness.known.withLock { $0 = (ContinuousClock.now, ready) }
        guard ready else { throw APIError.notReady }
    }

    /// The server's start, for `created` fields that describe the model.
    static let started = Int(Date().timeIntervalSince1970)

    func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: GatewayContext) async throws -> T {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            throw APIError(
                status: 413,
                message: "the request body is larger than \(GatewayContext.maxBody >> 20) MiB",
                type: "invalid_request_error"
            )
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch let error as DecodingError {
            throw APIError.invalid("the body is not a valid request: \(error.readable)")
        }
    }
}

/// Runs a handler; whatever it throws becomes OpenAI's error JSON with its status.
func respond(_ handler: () async throws -> Response) async -> Response {
    do {
        return try await handler()
    } catch {
        return errorResponse(APIError.from(error))
    }
}

func errorResponse(_ error: APIError) -> Response {
    var response = json(error.body, status: .init(code: error.status))
    if let retry = error.retryAfter { response.headers[.retryAfter] = "\(retry)" }
    return response
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .withoutEscapingSlashes
    let data: Data
    do {
        data = try encoder.encode(value)
    } catch {
        // Only this file's own types are encoded here; one that cannot be is a bug, reported as such.
        return Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: "\(error)")))
    }
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// The request context: the default one with a body limit large enough for a picture.
struct GatewayContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    init(source: Source) { coreContext = .init(source: source) }
    /// Largest request body: a picture as big as the coordinator takes (64 MiB), in base64 (a third larger).
    static let maxBody = 96 << 20
    var maxUploadSize: Int { Self.maxBody }
}

/// With API keys, every request but `/health` needs `Authorization: Bearer KEY` with one of them.
struct APIKeyCheck: RouterMiddleware {
    typealias Context = GatewayContext
    let keys: Set<String>?

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws
        -> Response
    {
        // Probes and the scraper need no key (they see no job), nor does the playground page (its own requests send
        // the key its user gives).
        guard let keys, !["/", "/health", "/ready", "/metrics"].contains(request.uri.path) else {
            return try await next(request, context)
        }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), keys.contains(String(header.dropFirst("Bearer ".count))) else {
            return errorResponse(.unauthorized)
        }
        return try await next(request, context)
    }
}
