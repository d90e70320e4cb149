/// The keys and values one sequence has produced in a range of layers (post-RoPE keys, as transformers caches them).
///
/// Each layer's keys are stored position-major, `[position][kvHead][headDim]`, so appending a step is a plain append
/// and the attention products read one head with a row stride of `kvHeads · headDim`.
public struct KVCache: Sendable {
    /// The layers this cache covers (a stage's layer range).
    public let layers: Range<Int>
    /// `kvHeads · headDim`.
    public let width: Int
    /// Positions cached so far; the next row fed to this sequence sits at position `count`.
    public private(set) var count: Int = 0
    var keys: [[Float]]
    var values: [[Float]]

    public init(layers: Range<Int>, width: Int) {
        self.layers = layers
        self.width = width
        keys = Array(repeating: [], count: layers.count)
        values = Array(repeating: [], count: layers.count)
    }

    /// Appends one layer's new keys and values (`rows × width` each, rows given by the caller).
    mutating func append(
        layer: Int,
        keys newKeys: UnsafeBufferPointer<Float>,
        values newValues: UnsafeBufferPointer<Float>
    ) {
        let slot = layer - layers.lowerBound
        keys[slot].append(contentsOf: newKeys)
        values[slot].append(contentsOf: newValues)
    }

    /// Advances the position count after every layer has appended `rows` positions.
    mutating func advance(by rows: Int) { count += rows }
}
