/// Everything that can be wrong with a model directory, each case naming the file, key or tensor at fault.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case malformedConfig(path: String, detail: String)
    case invalidConfigValue(key: String, detail: String)
    /// A command's flag asks for what this model does not have (a layer range beyond its layers).
    case invalidArgument(flag: String, detail: String)
    case unsupportedConfig(key: String, detail: String)
    case malformedSafetensors(path: String, detail: String)
    case malformedIndex(path: String, detail: String)
    case missingTensor(name: String)
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case unsupportedDType(name: String, dtype: String)
    case invalidValue(name: String, detail: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "file not found: \(path)"
        case .unreadable(let path, let reason): "cannot read \(path): \(reason)"
        case .malformedConfig(let path, let detail): "malformed config \(path): \(detail)"
        case .invalidConfigValue(let key, let detail): "config.json: invalid value for '\(key)': \(detail)"
        case .invalidArgument(let flag, let detail): "--\(flag): \(detail)"
        case .unsupportedConfig(let key, let detail): "config.json: unsupported '\(key)': \(detail)"
        case .malformedSafetensors(let path, let detail): "malformed safetensors file \(path): \(detail)"
        case .malformedIndex(let path, let detail): "malformed shard index \(path): \(detail)"
        case .missingTensor(let name): "checkpoint has no tensor '\(name)'"
        case .shapeMismatch(let name, let expected, let found):
            "tensor '\(name)' has shape \(found), expected \(expected)"
        case .invalidValue(let name, let detail): "tensor '\(name)': \(detail)"
        case .unsupportedDType(let name, let dtype): "tensor '\(name)' has unsupported dtype \(dtype) (F32, BF16, F16)"
        }
    }
}
