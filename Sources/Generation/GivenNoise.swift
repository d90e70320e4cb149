/// Initial DDIM noise a caller supplies in place of the seeded noise, to reproduce another implementation's run:
/// `[image][patch][latent]`. One process and the coordinator read it, check it and look patches up the same way.
public struct GivenNoise: Sendable, Equatable {
    public let images: [[[Float]]]

    public init(images: [[[Float]]]) { self.images = images }

    /// Noise laid out flat as [images, patches, latent].
    public init(shape: [Int], values: [Float]) throws(RequestError) {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == values.count else {
            throw RequestError("noise must be float32 [images, patches, latent], not \(shape)")
        }
        let (patches, width) = (shape[1], shape[2])
        images = (0..<shape[0]).map { k in
            (0..<patches).map { i in Array(values[((k * patches + i) * width)..<((k * patches + i + 1) * width)]) }
        }
    }

    /// The noise of one patch; an interleaved answer may draw more images than the caller gave noise for.
    public func patch(_ key: PatchKey) throws(RequestError) -> [Float] {
        guard key.image < images.count, key.patch < images[key.image].count else {
            throw RequestError("the given noise covers \(images.count) image(s); image \(key.image + 1) needs more")
        }
        return images[key.image][key.patch]
    }
}

extension JobPlanner {
    /// Given noise must have the shape the request can use, checked before its values are read: [1, patches, latent]
    /// for text-to-image, [images, patches, latent] for an interleaved answer with no more images than its token
    /// budget allows (each takes its patches, BOI and EOI); text requests take none.
    public func validateNoise(shape: [Int], for request: GenerationRequest) throws(RequestError) {
        let images: Int
        switch request.mode {
        case .text, .imageToText: throw RequestError("noise applies to text-to-image and interleaved jobs only")
        case .textToImage: images = 1
        case .interleaved: images = maxTokens(request) / (patches + 2)
        }
        guard shape.count == 3, images > 0, (1...images).contains(shape[0]), shape[1] == patches, shape[2] == latentDim
        else {
            throw RequestError(
                "noise must be float32 [images, \(patches), \(latentDim)] with 1 to \(images) image(s) for this job, not \(shape)"
            )
        }
    }
}
