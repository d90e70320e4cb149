import Checkpoint
import ImageIO
import Tensor
import TestSupport
import Testing
import VQVAE

@testable import Gateway

/// The partial pictures of a streamed image generation: when each is due, and what it shows (the known patches
/// decoded as the final image is, the rest blank).
@Suite struct PartialImagesTests {
    @Test func partialImagesAreDueEvenlyAndEachOnce() {
        var partials = PartialImages(total: 16, count: 3)
        var due: [Int: Int] = [:]
        for done in 1...16 {
            if let index = partials.add(done: done, latent: [1]) { due[done] = index }
        }
        // After 4, 8 and 12 of 16 patches: ceil(k * 16 / 4).
        #expect(due == [4: 0, 8: 1, 12: 2])
        var every = PartialImages(total: 16, count: 15)
        #expect((1...16).compactMap { every.add(done: $0, latent: []) } == Array(0..<15))
        var none = PartialImages(total: 16, count: 0)
        #expect((1...16).compactMap { none.add(done: $0, latent: []) }.isEmpty)
        // A patch number outside the image is ignored.
        #expect(none.add(done: 17, latent: [1]) == nil && none.add(done: 0, latent: [1]) == nil)
    }

    @Test func aPartialPictureIsTheDecoderOnKnownPatchesWithTheRestBlank() throws {
        let decoder = try VQDecoder(directory: try ModelDirectory(path: Fixtures.tinyOrthus))
        let (total, width) = (decoder.patchCount, decoder.latentDim)
        let latents: [[Float]] = (0..<total).map { patch in
            (0..<width).map { channel in Float((channel * 7 + patch * 3) % 11) / 5 - 1 }
        }
        var partials = PartialImages(total: total, count: 1)
        for (done, latent) in latents.enumerated().prefix(total / 2) {
            _ = partials.add(done: done + 1, latent: latent)
        }
        let half = partials.picture(decoder)
        for (done, latent) in latents.enumerated().dropFirst(total / 2) {
            _ = partials.add(done: done + 1, latent: latent)
        }
        let whole = partials.picture(decoder)

        // Every patch known: exactly the final image's decode.
        let matrix = Matrix(rows: total, columns: width, values: latents.flatMap { $0 })
        let decoded = decoder.decode(matrix)
        #expect(whole == ChameleonImage.postprocess(decoded.values, resolution: decoded.height))
        // Half known: the lower half of the grid (raster order) is blank, the upper half is drawn.
        let grid = Int(Double(total).squareRoot())
        let block = half.width / grid
        let rowBytes = half.width * half.channels
        let lower = half.pixels[(half.height / 2 * rowBytes)...]
        #expect(lower.allSatisfy { $0 == PartialImages.blank })
        let upper = half.pixels[..<((grid / 2) * block * rowBytes)]
        #expect(!upper.allSatisfy { $0 == PartialImages.blank })
        #expect(half.width == decoder.resolution && half.height == decoder.resolution)
    }
}
