/// Element types a checkpoint may store. Compute is always float32: narrower types are widened on load.
public enum DType: String, Sendable, CaseIterable {
    case float32 = "F32"
    case bfloat16 = "BF16"
    case float16 = "F16"
    /// 8-bit weights' values (with their scales beside them: `Q8`).
    case int8 = "I8"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float32: 4
        case .bfloat16, .float16: 2
        case .int8: 1
        }
    }
}

/// Widening conversions from stored element types to float32.
public enum Widen {
    /// Converts `count` little-endian elements of `dtype` at `source` into float32 at `destination`.
    ///
    /// `source` may be unaligned (safetensors offsets are not aligned), so elements are read bytewise.
    public static func toFloat32(
        _ dtype: DType,
        from source: UnsafeRawPointer,
        count: Int,
        into destination: UnsafeMutablePointer<Float>
    ) {
        switch dtype {
        case .float32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .bfloat16:
            for i in 0..<count {
                let bits = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                destination[i] = Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16)
            }
        case .float16:
            for i in 0..<count {
                let bits = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                destination[i] = Float(Float16(bitPattern: UInt16(littleEndian: bits)))
            }
        case .int8:
            for i in 0..<count { destination[i] = Float(source.load(fromByteOffset: i, as: Int8.self)) }
        }
    }

    /// Rounds float32 to bfloat16 bits (round to nearest even), as PyTorch's `.to(torch.bfloat16)` does.
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return 0x7FC0 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
