import Foundation
import Generation
import Wire

/// What the gateway knows of the model it fronts: its name in the API, its image size, its default options.
struct ServedModel: Sendable {
    /// The id clients name in `model` (the model folder's name unless told otherwise).
    var id: String
    /// Generated images are this many pixels square; `size` must say so.
    var imageSide: Int
    /// Patches per image: a streamed generation sends fewer partial images than this.
    var patches: Int
}

/// Turns OpenAI request bodies into cluster jobs, refusing what the cluster cannot do with a message naming the field.
/// Pure: no sockets, no clock.
enum RequestMapping {
    /// A chat completion's job: the text of every message in order (one line each) as the prompt; a message's image
    /// (a `data:image/png;base64,` URL) makes it a question about that picture; `modalities` with "image" asks for an
    /// interleaved answer.
    static func job(for chat: ChatRequest, model: ServedModel) throws(APIError) -> (spec: JobSpec, picture: [UInt8]?) {
        guard chat.model == model.id else { throw .unknownModel(chat.model, served: model.id) }
        if let n = chat.n, n != 1 { throw .invalid("n must be 1: one answer per request", param: "n") }
        guard !chat.messages.isEmpty else { throw .invalid("messages must not be empty", param: "messages") }
        var texts: [String] = []
        var pictures: [[UInt8]] = []
        for (index, message) in chat.messages.enumerated() {
            switch message.content {
            case .text(let text): texts.append(text)
            case .parts(let parts):
                for part in parts {
                    switch part.type {
                    case "text": texts.append(part.text ?? "")
                    case "image_url":
                        guard let url = part.image_url?.url else {
                            throw .invalid("an image_url part needs image_url.url", param: "messages[\(index)]")
                        }
                        pictures.append(try png(fromDataURL: url, param: "messages[\(index)]"))
                    default:
                        throw .invalid(
                            "content parts may be text or image_url, not '\(part.type)'",
                            param: "messages[\(index)]"
                        )
                    }
                }
            case nil: continue
            }
        }
        guard pictures.count <= 1 else {
            throw .invalid("at most one image per request: the model answers about one picture", param: "messages")
        }
        let prompt = texts.joined(separator: "\n")
        guard !prompt.isEmpty else { throw .invalid("the messages carry no text", param: "messages") }
        let interleaved = chat.modalities?.contains("image") ?? false
        if interleaved, !pictures.isEmpty {
            throw .invalid("an interleaved answer (modalities with image) takes no input image", param: "modalities")
        }
        let mode: GenerationMode = !pictures.isEmpty ? .imageToText : interleaved ? .interleaved : .text
        let maxTokens = chat.max_completion_tokens ?? chat.max_tokens
        if let maxTokens, maxTokens <= 0 {
            throw .invalid(
                "max_tokens must be positive",
                param: chat.max_completion_tokens != nil ? "max_completion_tokens" : "max_tokens"
            )
        }
        let request = GenerationRequest(
            mode: mode,
            prompt: prompt,
            maxTokens: maxTokens,
            sampling: try sampling(mode, temperature: chat.temperature, topP: chat.top_p),
            seed: chat.seed ?? 0,
            guidance: try guidance(chat.guidance_scale),
            steps: try steps(chat.steps)
        )
        return (JobSpec(request), pictures.first)
    }

    /// An image generation's jobs: `n` text-to-image jobs, image i with seed `seed + i` (so they differ, and each is
    /// what `orthus generate --seed` gives).
    static func jobs(for images: ImageRequest, model: ServedModel) throws(APIError) -> [JobSpec] {
        if let name = images.model, name != model.id { throw .unknownModel(name, served: model.id) }
        guard !images.prompt.isEmpty else { throw .invalid("prompt must not be empty", param: "prompt") }
        let n = images.n ?? 1
        guard (1...10).contains(n) else { throw .invalid("n must be 1 to 10", param: "n") }
        let side = "\(model.imageSide)x\(model.imageSide)"
        if let size = images.size, size != side, size != "auto" {
            throw .invalid("size must be \(side), the model's image size (or auto), not \(size)", param: "size")
        }
        if let format = images.response_format, format != "b64_json", format != "url" {
            throw .invalid("response_format must be b64_json or url, not \(format)", param: "response_format")
        }
        if images.stream == true {
            guard n == 1 else { throw .invalid("a streamed image generation makes one image (n 1)", param: "n") }
            if let partial = images.partial_images, !(0..<model.patches).contains(partial) {
                throw .invalid(
                    "partial_images must be 0 to \(model.patches - 1) (the model's images have \(model.patches) patches)",
                    param: "partial_images"
                )
            }
        } else if images.partial_images != nil {
            throw .invalid("partial_images needs stream: true", param: "partial_images")
        }
        let guidance = try guidance(images.guidance_scale)
        let steps = try steps(images.steps)
        return (0..<n).map { index in
            JobSpec(
                GenerationRequest(
                    mode: .textToImage,
                    prompt: images.prompt,
                    seed: (images.seed ?? 0) &+ UInt64(index),
                    guidance: guidance,
                    steps: steps
                )
            )
        }
    }

    private static func sampling(
        _ mode: GenerationMode,
        temperature: Float?,
        topP: Float?
    ) throws(APIError)
        -> SamplingParameters
    {
        let defaults = GenerationRequest.defaultSampling(mode)
        if let temperature, !(temperature >= 0 && temperature <= 2) {
            throw .invalid("temperature must be between 0 and 2", param: "temperature")
        }
        if let topP, !(topP > 0 && topP <= 1) { throw .invalid("top_p must be in (0, 1]", param: "top_p") }
        return SamplingParameters(
            temperature: temperature ?? defaults.temperature,
            topK: defaults.topK,
            topP: topP ?? defaults.topP
        )
    }

    private static func guidance(_ scale: Float?) throws(APIError) -> Float? {
        if let scale, !(scale.isFinite && scale >= 0) {
            throw .invalid("guidance_scale must be a number >= 0", param: "guidance_scale")
        }
        return scale
    }

    private static func steps(_ steps: Int?) throws(APIError) -> Int {
        guard let steps else { return 100 }
        guard (1...1000).contains(steps) else { throw .invalid("steps must be 1 to 1000", param: "steps") }
        return steps
    }

    /// The PNG in a `data:image/png;base64,...` URL. Other URLs are refused: the gateway fetches nothing (its hosts
    /// may have no network, and fetching what a client names is a way into the network behind it).
    static func png(fromDataURL url: String, param: String) throws(APIError) -> [UInt8] {
        let prefix = "data:image/png;base64,"
        guard url.hasPrefix(prefix) else {
            throw .invalid(
                "images must be data URLs of a PNG (data:image/png;base64,...); other URLs are not fetched",
                param: param,
                code: "invalid_image_url"
            )
        }
        guard let bytes = Data(base64Encoded: String(url.dropFirst(prefix.count))) else {
            throw .invalid("the image's data URL is not valid base64", param: param, code: "invalid_image_url")
        }
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw .invalid("the image's data URL does not hold a PNG", param: param, code: "invalid_image_url")
        }
        return Array(bytes)
    }
}
