/// Parses layer ranges written `A..<B` (half-open) or `A..B` (closed), as the CLI and cluster specs take them.
public enum LayerRange {
    public static func parse(_ text: String) -> Range<Int>? {
        if let split = text.range(of: "..<") {
            guard let a = Int(text[..<split.lowerBound]), let b = Int(text[split.upperBound...]), a < b, a >= 0 else {
                return nil
            }
            return a..<b
        }
        if let split = text.range(of: "..") {
            guard let a = Int(text[..<split.lowerBound]), let b = Int(text[split.upperBound...]), a <= b, a >= 0 else {
                return nil
            }
            return a..<(b + 1)
        }
        return nil
    }
}
