import Checkpoint
import Foundation
import Tensor
import TestSupport
import Testing

@testable import VQVAE

/// The encoder against transformers' ChameleonVQVAE modules; the decoder against a PyTorch module written from the
/// spec with torch's Conv2d, GroupNorm and interpolate.
@Suite struct VQGoldenTests {
    let directory = try! ModelDirectory(path: Fixtures.tinyOrthus)

    @Test func decodedPixelsMatchThePyTorchDecoder() throws {
        let decoder = try VQDecoder(directory: directory)
        let latents = try Fixtures.golden("vq-decode-latents")
        let golden = try Fixtures.golden("vq-decode-pixels")
        let pixels = decoder.decode(Matrix(rows: latents.shape[0], columns: latents.shape[1], values: latents.values))
        #expect([pixels.channels, pixels.height, pixels.width] == golden.shape)
        #expect(Fixtures.relativeError(pixels.values, golden.values) <= 1e-4)
    }

    @Test func encodedLatentsMatchTransformersEncoderAndQuantConv() throws {
        let encoder = try VQEncoder(directory: directory)
        let pixels = try Fixtures.golden("vq-encode-pixels")
        let golden = try Fixtures.golden("vq-encode-latents")
        let latents = encoder.encode(
            FeatureMap(channels: 3, height: pixels.shape[1], width: pixels.shape[2], values: pixels.values)
        )
        #expect([latents.rows, latents.columns] == golden.shape)
        #expect(Fixtures.relativeError(latents.storage, golden.values) <= 1e-4)
    }

    @Test func aMissingDecoderTensorIsNamed() throws {
        let plain = try ModelDirectory(path: Fixtures.tinyChameleonGQA)
        let error = try #require(throws: CheckpointError.self) { _ = try VQDecoder(directory: plain) }
        #expect("\(error)".contains("model.vqmodel.post_quant_conv.weight"))
    }
}
