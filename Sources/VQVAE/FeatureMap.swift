import Foundation
import Tensor

/// One image's activations, channels-first: `values[c · height · width + y · width + x]`.
public struct FeatureMap: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public var values: [Float]

    public init(channels: Int, height: Int, width: Int, values: [Float]) {
        precondition(
            values.count == channels * height * width,
            "\(values.count) values for \(channels)x\(height)x\(width)"
        )
        self.channels = channels
        self.height = height
        self.width = width
        self.values = values
    }

    public init(channels: Int, height: Int, width: Int) {
        self.init(
            channels: channels,
            height: height,
            width: width,
            values: [Float](repeating: 0, count: channels * height * width)
        )
    }

    var plane: Int { height * width }

    /// x · sigmoid(x), in place.
    mutating func swish() {
        for i in values.indices { values[i] = values[i] / (1 + exp(-values[i])) }
    }

    static func + (a: FeatureMap, b: FeatureMap) -> FeatureMap {
        precondition(a.values.count == b.values.count, "adding feature maps of different shapes")
        var out = a
        for i in out.values.indices { out.values[i] += b.values[i] }
        return out
    }

    /// Nearest-neighbour ×2 upsampling (`F.interpolate(scale_factor=2, mode="nearest")`).
    func upsampled() -> FeatureMap {
        var out = FeatureMap(channels: channels, height: 2 * height, width: 2 * width)
        for c in 0..<channels {
            for y in 0..<(2 * height) {
                for x in 0..<(2 * width) {
                    out.values[(c * 2 * height + y) * 2 * width + x] = values[(c * height + y / 2) * width + x / 2]
                }
            }
        }
        return out
    }
}
