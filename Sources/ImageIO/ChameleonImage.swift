import Foundation

/// Errors preparing an input image.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    case zeroSize(width: Int, height: Int)

    public var description: String {
        switch self {
        case .zeroSize(let width, let height): "the image is \(width)x\(height): nothing to encode"
        }
    }
}

/// Chameleon/Orthus image pre- and postprocessing (docs/model.md §3.7).
public enum ChameleonImage {
    public static let rescaleFactor: Float = 0.0078

    /// RGBA → RGB as the Chameleon processor does: if any pixel is not opaque, blend onto white
    /// (`(1 − α)·255 + α·rgb`, truncated to 8 bits); otherwise drop alpha.
    public static func flattenAlpha(_ image: Image8) -> Image8 {
        precondition(image.channels == 4, "flattening takes RGBA")
        let count = image.width * image.height
        let opaque = (0..<count).allSatisfy { image.pixels[$0 * 4 + 3] == 255 }
        var rgb = [UInt8](repeating: 0, count: count * 3)
        for i in 0..<count {
            let alpha = Double(image.pixels[i * 4 + 3]) / 255
            for c in 0..<3 {
                let value = Double(image.pixels[i * 4 + c])
                rgb[i * 3 + c] = opaque ? image.pixels[i * 4 + c] : UInt8((1 - alpha) * 255 + alpha * value)
            }
        }
        return Image8(width: image.width, height: image.height, channels: 3, pixels: rgb)
    }

    /// Model input `[3, R, R]` (channels first) for an RGBA image: flatten alpha, resize the shortest edge to R with
    /// Lanczos (long side `int(R · long / short)`), centre-crop R×R, then `x · 0.0078 − 1`.
    public static func preprocess(_ image: Image8, resolution r: Int) throws -> [Float] {
        guard image.width > 0, image.height > 0 else {
            throw ImageError.zeroSize(width: image.width, height: image.height)
        }
        let rgb = image.channels == 4 ? flattenAlpha(image) : image
        let (short, long) = (min(rgb.width, rgb.height), max(rgb.width, rgb.height))
        let newLong = Int(Double(r) * Double(long) / Double(short))
        let (w, h) = rgb.width <= rgb.height ? (r, newLong) : (newLong, r)
        let resized = LanczosResampler.resize(rgb, width: w, height: h)
        let (top, left) = ((h - r) / 2, (w - r) / 2)
        var out = [Float](repeating: 0, count: 3 * r * r)
        for y in 0..<r {
            for x in 0..<r {
                for c in 0..<3 {
                    let value = resized.pixels[((top + y) * w + left + x) * 3 + c]
                    out[(c * r + y) * r + x] = Float(Double(value) * Double(rescaleFactor) - 1)  // float64, then cast
                }
            }
        }
        return out
    }

    /// 8-bit RGB for model output `[3, R, R]`: `(x + 1) · (1 / 0.0078)`, clipped to [0, 255], truncated.
    public static func postprocess(_ pixels: [Float], resolution r: Int) -> Image8 {
        precondition(pixels.count == 3 * r * r, "\(pixels.count) values for 3x\(r)x\(r)")
        let scale = Float(1 / Double(rescaleFactor))
        var out = [UInt8](repeating: 0, count: 3 * r * r)
        for y in 0..<r {
            for x in 0..<r {
                for c in 0..<3 {
                    let value = (pixels[(c * r + y) * r + x] + 1) * scale
                    out[(y * r + x) * 3 + c] = UInt8(min(max(value, 0), 255))
                }
            }
        }
        return Image8(width: r, height: r, channels: 3, pixels: out)
    }
}
