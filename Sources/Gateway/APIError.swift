import ClusterClient

/// An error as OpenAI's API reports it: a status code and `{"error": {"message", "type", "param", "code"}}`, so
/// clients written for OpenAI show the message and react to the status (429 and 503 are retried by its SDKs).
struct APIError: Error, Sendable, Equatable {
    var status: Int
    var message: String
    var type: String
    var param: String?
    var code: String?
    /// Seconds after which a retry may succeed (429, 503).
    var retryAfter: Int?

    struct Body: Encodable {
        struct Detail: Encodable {
            var message: String
            var type: String
            var param: String?
            var code: String?
        }
        var error: Detail
    }

    var body: Body { Body(error: .init(message: message, type: type, param: param, code: code)) }

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func unknownModel(_ model: String, served: String) -> APIError {
        APIError(
            status: 404,
            message: "The model '\(model)' does not exist; this server serves '\(served)'",
            type: "invalid_request_error",
            param: "model",
            code: "model_not_found"
        )
    }

    static let unauthorized = APIError(
        status: 401,
        message: "Incorrect or missing API key: send 'Authorization: Bearer KEY' with a key this server was given",
        type: "invalid_request_error",
        code: "invalid_api_key"
    )

    static let notReady = APIError(
        status: 503,
        message: "the cluster is not ready: it needs a complete pipeline of stages, an LM-head and a diffusion worker",
        type: "server_error",
        code: "cluster_not_ready",
        retryAfter: 5
    )

    static func notFound(_ what: String) -> APIError {
        APIError(status: 404, message: what, type: "invalid_request_error", code: "not_found")
    }

    /// What the coordinator's refusal or a client error means for an HTTP client.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError: return error
        case ClientError.refused(let reason):
            if reason.hasPrefix("the cluster is full") {
                return APIError(
                    status: 429,
                    message: reason,
                    type: "rate_limit_error",
                    code: "cluster_full",
                    retryAfter: 1
                )
            }
            if reason.contains("can fit the context") || reason.contains("the model's context is")
                || reason.contains("could never run")
            {
                return .invalid(reason, param: "messages", code: "context_length_exceeded")
            }
            if reason.hasPrefix("invalid job: ") {
                return .invalid(String(reason.dropFirst("invalid job: ".count)))
            }
            return APIError(status: 500, message: reason, type: "server_error", code: "job_failed")
        case ClientError.noAnswer, ClientError.closed:
            return APIError(
                status: 503,
                message: "the cluster's coordinator does not answer: \(error)",
                type: "server_error",
                code: "cluster_unavailable",
                retryAfter: 5
            )
        default:
            return APIError(status: 500, message: "\(error)", type: "server_error")
        }
    }
}
