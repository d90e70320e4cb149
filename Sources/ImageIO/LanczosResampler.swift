import Foundation

/// Image resizing exactly as Pillow's `Image.resize(size, Image.LANCZOS)` does it for 8-bit RGB: a Lanczos-3 kernel
/// widened by the downscale factor, coefficients normalized and converted to 22-bit fixed point, a horizontal pass
/// then a vertical pass, each rounding and clipping to 8 bits.
enum LanczosResampler {
    static let precisionBits = 32 - 8 - 2

    static func lanczos(_ x: Double) -> Double {
        func sinc(_ x: Double) -> Double {
            if x == 0 { return 1 }
            let px = x * Double.pi
            return sin(px) / px
        }
        return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
    }

    /// Per output index: the first input index, the tap count, and fixed-point weights.
    static func coefficients(inSize: Int, outSize: Int) -> [(first: Int, weights: [Int])] {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 3 * filterScale
        return (0..<outSize).map { xx in
            let center = (Double(xx) + 0.5) * scale
            let inverse = 1 / filterScale
            let first = max(Int(center - support + 0.5), 0)  // C's (int) truncates toward zero
            let count = min(Int(center + support + 0.5), inSize) - first
            var weights = (0..<max(0, count)).map { x in lanczos((Double(x + first) - center + 0.5) * inverse) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            let one = Double(1 << precisionBits)
            return (first, weights.map { $0 < 0 ? Int(-0.5 + $0 * one) : Int(0.5 + $0 * one) })
        }
    }

    static func clip8(_ accumulator: Int) -> UInt8 { UInt8(clamping: accumulator >> precisionBits) }

    /// Resizes RGB `image` to `width × height`.
    static func resize(_ image: Image8, width: Int, height: Int) -> Image8 {
        precondition(image.channels == 3, "the resampler takes RGB")
        var current = image
        if width != image.width {
            let taps = coefficients(inSize: image.width, outSize: width)
            var out = [UInt8](repeating: 0, count: width * image.height * 3)
            for y in 0..<image.height {
                for (x, tap) in taps.enumerated() {
                    for c in 0..<3 {
                        var sum = 1 << (precisionBits - 1)
                        for (i, w) in tap.weights.enumerated() {
                            sum += Int(current.pixels[(y * image.width + tap.first + i) * 3 + c]) * w
                        }
                        out[(y * width + x) * 3 + c] = clip8(sum)
                    }
                }
            }
            current = Image8(width: width, height: image.height, channels: 3, pixels: out)
        }
        if height != image.height {
            let taps = coefficients(inSize: image.height, outSize: height)
            var out = [UInt8](repeating: 0, count: width * height * 3)
            for (y, tap) in taps.enumerated() {
                for x in 0..<width {
                    for c in 0..<3 {
                        var sum = 1 << (precisionBits - 1)
                        for (i, w) in tap.weights.enumerated() {
                            sum += Int(current.pixels[((tap.first + i) * width + x) * 3 + c]) * w
                        }
                        out[(y * width + x) * 3 + c] = clip8(sum)
                    }
                }
            }
            current = Image8(width: width, height: height, channels: 3, pixels: out)
        }
        return current
    }
}
