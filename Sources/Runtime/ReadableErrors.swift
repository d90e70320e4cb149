import Foundation

extension DecodingError {
    /// What is wrong with a JSON document, for a person: the field by its path and what was expected, instead of
    /// Foundation's nested dump.
    public var readable: String {
        func path(_ context: Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
                .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch self {
        case .keyNotFound(let key, let context):
            let at = path(context)
            return "missing field '\(at.isEmpty ? "" : at + ".")\(key.stringValue)'"
        case .typeMismatch(let type, let context):
            return "field '\(path(context))' should be \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "field '\(path(context))' is null; it should be \(Self.name(of: type))"
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            if context.codingPath.isEmpty { return "not valid JSON" + (underlying.map { " (\($0))" } ?? "") }
            return "field '\(path(context))': \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type, is UInt32.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default: "\(type)".hasPrefix("Array") ? "a list" : "an object (\(type))"
        }
    }
}

/// Why a file a command was given cannot be read, without Foundation's error-domain dump.
public func readableFileError(_ error: any Error, path: String) -> String {
    let ns = error as NSError
    if ns.domain == NSCocoaErrorDomain {
        switch ns.code {
        case NSFileReadNoSuchFileError, NSFileNoSuchFileError: return "\(path): no such file"
        case NSFileReadNoPermissionError: return "\(path): permission denied"
        case NSFileReadCorruptFileError, NSFileReadInapplicableStringEncodingError: return "\(path): not readable text"
        default: break
        }
    }
    if ns.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(ns.code)) {
        return "\(path): \(String(cString: strerror(code.rawValue)))"
    }
    return "\(path): \(ns.localizedDescription)"
}
