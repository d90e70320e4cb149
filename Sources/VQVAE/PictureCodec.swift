import Checkpoint
import ImageIO
import Tensor

/// Pictures to latents and back, as Orthus does at its edges: an input picture is preprocessed as the Chameleon
/// processor does (RGBA blended on white, resized, centre-cropped) and encoded to one latent per patch in raster
/// order; finished latents are decoded and postprocessed to 8-bit RGB.
public struct PictureCodec: Sendable {
    public let encoder: VQEncoder
    public let decoder: VQDecoder

    public init(encoder: VQEncoder, decoder: VQDecoder) {
        self.encoder = encoder
        self.decoder = decoder
    }

    public init(directory: ModelDirectory) throws {
        self.init(encoder: try VQEncoder(directory: directory), decoder: try VQDecoder(directory: directory))
    }

    public var patchCount: Int { decoder.patchCount }
    public var latentDim: Int { decoder.latentDim }

    /// The latents `[patches, latent]` of a picture.
    public func encode(_ picture: Image8) throws -> Matrix {
        let r = encoder.resolution
        let pixels = try ChameleonImage.preprocess(picture, resolution: r)
        return encoder.encode(FeatureMap(channels: 3, height: r, width: r, values: pixels))
    }

    /// One image's latents `[patches, latent]` to 8-bit RGB (`post_quant_conv` + decoder, then postprocessing).
    public func decode(_ latents: Matrix) -> Image8 {
        let pixels = decoder.decode(latents)
        return ChameleonImage.postprocess(pixels.values, resolution: pixels.height)
    }

    /// The same, from one latent per patch.
    public func decode(patches: [[Float]]) -> Image8 {
        decode(Matrix(rows: patches.count, columns: latentDim, values: patches.flatMap { $0 }))
    }
}
