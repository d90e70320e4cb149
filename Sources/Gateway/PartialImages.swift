import ImageIO
import Tensor
import VQVAE

/// The partial pictures of one streamed image generation. Patches are sampled in raster order and each progress
/// message carries the finished patch's latent, so after `ceil(k · total / (count + 1))` patches (k = 1 ... count) the
/// patches known so far are decoded with the VQ decoder, as the final image is, and every patch not yet known is
/// painted blank. Pure: the stream around it sends what it returns.
struct PartialImages: Sendable {
    /// Patches per image.
    let total: Int
    /// Partial images asked for (fewer than `total`: the last one is the finished image itself).
    let count: Int
    private(set) var latents: [[Float]?]
    /// Partial images already due.
    private(set) var sent = 0

    /// The grey of patches not sampled yet: light, so a picture on a white page reads as "still being drawn".
    static let blank: UInt8 = 0xE0

    init(total: Int, count: Int) {
        precondition(total > 0 && (0..<total).contains(count), "0 ..< \(total) partial images, not \(count)")
        self.total = total
        self.count = count
        latents = Array(repeating: nil, count: total)
    }

    /// The patches after which partial image `index` is due.
    func due(_ index: Int) -> Int { ((index + 1) * total + count) / (count + 1) }

    /// Records that patch `done` (counted from 1) is `latent`; returns the index of the partial image due now, if one
    /// is. A message without a latent (a replayed history) or outside the image leaves a blank patch.
    mutating func add(done: Int, latent: [Float]) -> Int? {
        guard (1...total).contains(done) else { return nil }
        if !latent.isEmpty { latents[done - 1] = latent }
        guard sent < count, done >= due(sent) else { return nil }
        sent += 1
        return sent - 1
    }

    /// The picture so far: known latents decoded, unknown patches (zeros to the decoder) painted `blank`.
    func picture(_ decoder: VQDecoder) -> Image8 {
        let width = decoder.latentDim
        var matrix = Matrix(rows: total, columns: width)
        for (patch, latent) in latents.enumerated() {
            guard let latent, latent.count == width else { continue }
            for c in 0..<width { matrix.storage[patch * width + c] = latent[c] }
        }
        let pixels = decoder.decode(matrix)
        var image = ChameleonImage.postprocess(pixels.values, resolution: pixels.height)
        let grid = Int(Double(total).squareRoot().rounded())
        let block = image.width / grid
        for (patch, latent) in latents.enumerated() where latent?.count != width {
            let (top, left) = (patch / grid * block, patch % grid * block)
            for y in top..<(top + block) {
                let row = (y * image.width + left) * image.channels
                for i in row..<(row + block * image.channels) { image.pixels[i] = Self.blank }
            }
        }
        return image
    }
}
