import ImageIO

/// An object the detector found: a connected region of one palette colour, its shape and where it is.
public struct DetectedObject: Sendable, Equatable, CustomStringConvertible {
    public let colour: String
    public let shape: String
    /// Centroid in pixels (pixel centres at +0.5).
    public let x: Double
    public let y: Double
    public let area: Int
    /// The nearest named anchor ("left", "centre", ...).
    public let position: String

    public var description: String { "\(colour) \(shape) (\(position))" }
}

/// Finds the shapes in a picture of the shapes world, deterministically: each pixel takes the nearest palette colour
/// (or none, when the background or nothing is near), regions of one colour are joined (4-neighbours), regions too
/// small to be an object are dropped, and each region's shape comes from how it fills its bounding box and how its
/// area splits between the box's upper and lower halves (a triangle stands on its base).
public struct ShapeDetector: Sendable {
    let palette: [(name: String, rgb: SIMD3<Float>)]
    let background: SIMD3<Float>
    let anchors: [(name: String, x: Double, y: Double)]
    /// A pixel farther than this (RGB distance) from every blend of the background and a palette colour belongs to
    /// no object.
    let maxDistance: Float = 60
    /// The smallest object drawn covers about 40 pixels; specks below this are noise.
    let minimumArea = 12

    public init(set: EvalSet) {
        palette = set.colours.keys.sorted().map { name in
            let c = set.colours[name]!
            return (name, SIMD3(Float(c[0]), Float(c[1]), Float(c[2])))
        }
        background = SIMD3(Float(set.background[0]), Float(set.background[1]), Float(set.background[2]))
        anchors = set.anchors.keys.sorted().map { (name: $0, x: set.anchors[$0]![0], y: set.anchors[$0]![1]) }
    }

    /// The objects in `image` (RGB or RGBA), largest first.
    public func detect(_ image: Image8) -> [DetectedObject] {
        let labels = classify(image)
        var seen = [Bool](repeating: false, count: labels.count)
        var objects: [DetectedObject] = []
        for start in labels.indices where labels[start] >= 0 && !seen[start] {
            let region = flood(from: start, labels: labels, width: image.width, height: image.height, seen: &seen)
            if region.count >= minimumArea {
                objects.append(describe(region, colour: palette[labels[start]].name, width: image.width))
            }
        }
        return objects.sorted { ($0.area, $1.x) > ($1.area, $0.x) }
    }

    /// Each pixel's palette index, or -1. A pixel is read as a blend of the background and one palette colour:
    /// its coverage is its projection on the line from the background to that colour, and its distance from that
    /// line says how well the colour explains it. The best-explained colour wins if the pixel is at least half
    /// covered, the same rule for every colour (a plain RGB distance would keep more of a light colour's rim).
    func classify(_ image: Image8) -> [Int] {
        let limit = maxDistance * maxDistance
        return (0..<(image.width * image.height)).map { i in
            let base = i * image.channels
            let p = SIMD3(Float(image.pixels[base]), Float(image.pixels[base + 1]), Float(image.pixels[base + 2]))
            let offset = p - background
            var best = -1
            var bestResidual = limit
            for (k, entry) in palette.enumerated() {
                let direction = entry.rgb - background
                let coverage = (offset * direction).sum() / (direction * direction).sum()
                guard coverage >= 0.5 else { continue }
                let residual = squared(offset - min(coverage, 1) * direction)
                if residual < bestResidual {
                    best = k
                    bestResidual = residual
                }
            }
            return best
        }
    }

    func flood(from start: Int, labels: [Int], width: Int, height: Int, seen: inout [Bool]) -> [Int] {
        let label = labels[start]
        var region: [Int] = []
        var stack = [start]
        seen[start] = true
        while let i = stack.popLast() {
            region.append(i)
            let (x, y) = (i % width, i / width)
            for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
            where nx >= 0 && nx < width && ny >= 0 && ny < height {
                let n = ny * width + nx
                if !seen[n] && labels[n] == label {
                    seen[n] = true
                    stack.append(n)
                }
            }
        }
        return region
    }

    func describe(_ region: [Int], colour: String, width: Int) -> DetectedObject {
        let xs = region.map { $0 % width }
        let ys = region.map { $0 / width }
        let (x0, x1, y0, y1) = (xs.min()!, xs.max()!, ys.min()!, ys.max()!)
        let boxArea = Double((x1 - x0 + 1) * (y1 - y0 + 1))
        let fill = Double(region.count) / boxArea
        // Rows strictly below the box's middle line, against rows strictly above it (a middle row counts for neither).
        let middle = Double(y0 + y1) / 2
        let lower = ys.filter { Double($0) > middle }.count
        let upper = ys.filter { Double($0) < middle }.count
        let lowerShare = Double(lower) / Double(max(1, lower + upper))
        let shape: String
        if lowerShare > 0.62 || fill < 0.62 {
            shape = "triangle"
        } else if fill >= 0.89 {
            shape = "square"
        } else {
            shape = "circle"
        }
        let cx = Double(xs.reduce(0, +)) / Double(region.count) + 0.5
        let cy = Double(ys.reduce(0, +)) / Double(region.count) + 0.5
        let nearest = anchors.min { a, b in
            (a.x - cx) * (a.x - cx) + (a.y - cy) * (a.y - cy) < (b.x - cx) * (b.x - cx) + (b.y - cy) * (b.y - cy)
        }!
        return DetectedObject(colour: colour, shape: shape, x: cx, y: cy, area: region.count, position: nearest.name)
    }

    private func squared(_ v: SIMD3<Float>) -> Float { (v * v).sum() }
}
