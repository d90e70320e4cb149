import Foundation

/// Row-wise kernels used by the transformer blocks. Each row is computed on its own, so the rows of a batch never
/// influence each other (determinism across batch compositions depends on it).
public enum RowKernels {
    /// RMSNorm over each row of `x` (`rows × width`), in place: `x / sqrt(mean(x²) + eps) * weight`.
    public static func rmsNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, weight: [Float], eps: Float) {
        precondition(weight.count == width, "RMSNorm weight has \(weight.count) values for width \(width)")
        weight.withUnsafeBufferPointer { w in
            for r in 0..<rows {
                let row = x + r * width
                var sum: Double = 0
                for i in 0..<width { sum += Double(row[i]) * Double(row[i]) }
                let scale = Float(1 / (sum / Double(width) + Double(eps)).squareRoot())
                for i in 0..<width { row[i] = w[i] * (row[i] * scale) }
            }
        }
    }

    /// LayerNorm without affine parameters over consecutive groups of `width` values, in place.
    public static func layerNorm(_ x: UnsafeMutablePointer<Float>, groups: Int, width: Int, eps: Float) {
        for g in 0..<groups {
            let row = x + g * width
            var mean: Double = 0
            for i in 0..<width { mean += Double(row[i]) }
            mean /= Double(width)
            var variance: Double = 0
            for i in 0..<width {
                let d = Double(row[i]) - mean
                variance += d * d
            }
            variance /= Double(width)
            let inverse = 1 / (variance + Double(eps)).squareRoot()
            for i in 0..<width { row[i] = Float((Double(row[i]) - mean) * inverse) }
        }
    }

    /// `gate[i] = silu(gate[i]) * up[i]` for `count` values (the SwiGLU product).
    public static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            gate[i] = g / (1 + exp(-g)) * up[i]
        }
    }

    /// Softmax over `count` values in place, with max subtraction; `-infinity` entries get probability 0.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for i in 0..<count where x[i] > maximum { maximum = x[i] }
        guard maximum > -Float.infinity else { return }
        var sum: Float = 0
        for i in 0..<count {
            let e = exp(x[i] - maximum)
            x[i] = e
            sum += e
        }
        let inverse = 1 / sum
        for i in 0..<count { x[i] *= inverse }
    }

    /// `x += y` for `count` values.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }
}
