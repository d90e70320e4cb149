/// Problems with a `tokenizer.json` file or with token ids given to decode.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case malformed(detail: String)
    case unsupported(detail: String)
    case unknownID(Int)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read tokenizer \(path): \(reason)"
        case .malformed(let detail): "malformed tokenizer.json: \(detail)"
        case .unsupported(let detail): "unsupported tokenizer.json feature: \(detail)"
        case .unknownID(let id): "token id \(id) is not in the tokenizer's vocabulary"
        }
    }
}
