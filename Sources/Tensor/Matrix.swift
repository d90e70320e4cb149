/// A row-major float32 matrix that owns its storage.
///
/// Activations, weights widened from bf16/f16, logits and hidden states all use this one type. It is a value type
/// backed by an Array (copy-on-write), so it is `Sendable` and cheap to pass along.
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public let columns: Int
    public var storage: [Float]

    /// A zero-filled matrix.
    public init(rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "negative matrix shape \(rows)x\(columns)")
        self.rows = rows
        self.columns = columns
        self.storage = [Float](repeating: 0, count: rows * columns)
    }

    /// Wraps existing values; `values.count` must equal `rows * columns`.
    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for a \(rows)x\(columns) matrix")
        self.rows = rows
        self.columns = columns
        self.storage = values
    }

    /// A new matrix holding rows `range` of this one.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(
            rows: range.count,
            columns: columns,
            values: Array(storage[(range.lowerBound * columns)..<(range.upperBound * columns)])
        )
    }

    /// Appends the rows of `other`, which must have the same column count.
    public mutating func append(rowsOf other: Matrix) {
        precondition(other.columns == columns, "appending \(other.columns) columns to \(columns)")
        storage.append(contentsOf: other.storage)
        rows += other.rows
    }
}
