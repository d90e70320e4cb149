import Foundation

/// The OpenAI API's request and response bodies, as far as this gateway serves them (field names as OpenAI spells
/// them; fields it does not know are ignored, as OpenAI's own servers do).

/// `POST /v1/chat/completions`.
struct ChatRequest: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var role: String
        var content: Content?
    }

    /// A message's content: a string, or parts of text and images.
    enum Content: Decodable, Sendable {
        case text(String)
        case parts([Part])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {  // else: the parts form, whose error is the one to show
                self = .text(text)
            } else {
                self = .parts(try container.decode([Part].self))
            }
        }
    }

    struct Part: Decodable, Sendable {
        struct ImageURL: Decodable, Sendable { var url: String }
        var type: String
        var text: String?
        var image_url: ImageURL?
    }

    struct StreamOptions: Decodable, Sendable { var include_usage: Bool? }

    var model: String
    var messages: [Message]
    var stream: Bool?
    var stream_options: StreamOptions?
    var temperature: Float?
    var top_p: Float?
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var seed: UInt64?
    var n: Int?
    /// `["text", "image"]` asks for an interleaved answer (text with generated images).
    var modalities: [String]?
    /// Extra fields for the answer's images (as vLLM-Omni and the image endpoint take them).
    var guidance_scale: Float?
    var steps: Int?
}

/// `POST /v1/images/generations`.
struct ImageRequest: Decodable, Sendable {
    var prompt: String
    var model: String?
    var n: Int?
    var size: String?
    var response_format: String?
    var seed: UInt64?
    var guidance_scale: Float?
    var steps: Int?
    var stream: Bool?
    var partial_images: Int?
}

struct Usage: Codable, Sendable, Equatable {
    var prompt_tokens: Int
    var completion_tokens: Int
    var total_tokens: Int
}

/// A content part of an answer: text, or a generated image as a data URL (the convention vLLM-Omni uses).
struct AnswerPart: Encodable, Sendable {
    struct ImageURL: Encodable, Sendable { var url: String }
    var type: String
    var text: String?
    var image_url: ImageURL?

    static func text(_ text: String) -> AnswerPart { AnswerPart(type: "text", text: text) }
    static func image(png: [UInt8]) -> AnswerPart {
        AnswerPart(
            type: "image_url",
            image_url: ImageURL(url: "data:image/png;base64," + Data(png).base64EncodedString())
        )
    }
}

/// An answer's content: a string for text, parts for an interleaved answer.
enum AnswerContent: Encodable, Sendable {
    case text(String)
    case parts([AnswerPart])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .parts(let parts): try container.encode(parts)
        }
    }
}

struct ChatCompletion: Encodable, Sendable {
    struct Choice: Encodable, Sendable {
        struct Message: Encodable, Sendable {
            var role = "assistant"
            var content: AnswerContent
        }
        var index = 0
        var message: Message
        var finish_reason: String
    }
    var id: String
    var object = "chat.completion"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage
}

/// One server-sent event of a streamed chat completion.
struct ChatChunk: Encodable, Sendable {
    struct Choice: Encodable, Sendable {
        struct Delta: Encodable, Sendable {
            var role: String?
            /// A piece of text, or (in an interleaved answer) a generated picture as an `image_url` part.
            var content: AnswerContent?
        }
        var index = 0
        var delta: Delta
        var finish_reason: String?
    }
    var id: String
    var object = "chat.completion.chunk"
    var created: Int
    var model: String
    var choices: [Choice]
    var usage: Usage?
}

struct ImagesResponse: Encodable, Sendable {
    struct Image: Encodable, Sendable {
        var b64_json: String?
        var url: String?
    }
    var created: Int
    var data: [Image]
}

struct ModelList: Encodable, Sendable {
    struct Model: Encodable, Sendable {
        var id: String
        var object = "model"
        var created: Int
        var owned_by = "orthus"
    }
    var object = "list"
    var data: [Model]
}

/// One event of a streamed image generation: `image_generation.partial_image` (with its index) or
/// `image_generation.completed` (with usage), as OpenAI's SDKs read them.
struct ImageStreamEvent: Encodable, Sendable {
    struct ImageUsage: Encodable, Sendable {
        struct InputDetails: Encodable, Sendable {
            var image_tokens = 0
            var text_tokens: Int
        }
        var input_tokens: Int
        var input_tokens_details: InputDetails
        var output_tokens: Int
        var total_tokens: Int
    }
    var type: String
    var b64_json: String
    var created_at: Int
    var size: String
    var quality = "auto"
    var background = "opaque"
    var output_format = "png"
    var partial_image_index: Int?
    var usage: ImageUsage?
}
