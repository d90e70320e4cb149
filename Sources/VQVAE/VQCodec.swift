import Checkpoint
import Tensor

/// The sizes of the Chameleon VQGAN a checkpoint describes (`vq_config`, transformers' defaults where absent).
struct VQShape: Sendable {
    let resolution, inChannels, outChannels, baseChannels, resBlocks, latentChannels, embedDim: Int
    let multiplier: [Int]
    let attentionResolutions: Set<Int>

    init(_ c: VQConfiguration) {
        resolution = c.resolution ?? 512
        inChannels = c.inChannels ?? 3
        outChannels = c.outChannels ?? 3
        baseChannels = c.baseChannels ?? 128
        resBlocks = c.resBlockCount ?? 2
        latentChannels = c.latentChannels ?? 256
        embedDim = c.latentDim
        multiplier = c.channelMultiplier ?? [1, 1, 2, 2, 4]
        attentionResolutions = Set(c.attentionResolutions ?? [])
    }

    var grid: Int { resolution >> (multiplier.count - 1) }
}

/// The VQ-VAE encoder as Orthus uses it (docs/model.md §2.2, 3.7): `encoder → quant_conv`, no quantization.
/// Pixels `[3, R, R]` in [−1, 1] become latents `[grid², embedDim]` in raster order.
public struct VQEncoder: Sendable {
    let shape: VQShape
    let convIn: Convolution
    let levels: [(blocks: [ResnetBlock], attention: [AttentionBlock], downsample: Convolution?)]
    let midBlock1, midBlock2: ResnetBlock
    let midAttention: AttentionBlock
    let normOut: GroupNorm
    let convOut, quantConv: Convolution

    public init(directory: any TensorSource) throws {
        let s = VQShape(directory.configuration.vqConfig ?? VQConfiguration())
        let p = TensorManifest.VQNames.encoder
        shape = s
        convIn = try Convolution(directory, p + "conv_in", inputs: s.inChannels, outputs: s.baseChannels, kernel: 3)
        var levels: [(blocks: [ResnetBlock], attention: [AttentionBlock], downsample: Convolution?)] = []
        var resolution = s.resolution
        var channels = s.baseChannels
        for (level, multiplier) in s.multiplier.enumerated() {
            let out = s.baseChannels * multiplier
            var blocks: [ResnetBlock] = []
            var attention: [AttentionBlock] = []
            for j in 0..<s.resBlocks {
                blocks.append(
                    try ResnetBlock(directory, p + "down.\(level).block.\(j)", inputs: channels, outputs: out)
                )
                channels = out
                if s.attentionResolutions.contains(resolution) {
                    attention.append(try AttentionBlock(directory, p + "down.\(level).attn.\(j)", channels: channels))
                }
            }
            var downsample: Convolution?
            if level != s.multiplier.count - 1 {
                // F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 convolution with no padding.
                downsample = try Convolution(
                    directory,
                    p + "down.\(level).downsample.conv",
                    inputs: channels,
                    outputs: channels,
                    kernel: 3,
                    stride: 2,
                    padding: (0, 0, 1, 1)
                )
                resolution /= 2
            }
            levels.append((blocks, attention, downsample))
        }
        self.levels = levels
        midBlock1 = try ResnetBlock(directory, p + "mid.block_1", inputs: channels, outputs: channels)
        midAttention = try AttentionBlock(directory, p + "mid.attn_1", channels: channels)
        midBlock2 = try ResnetBlock(directory, p + "mid.block_2", inputs: channels, outputs: channels)
        normOut = try GroupNorm(directory, p + "norm_out", channels: channels)
        convOut = try Convolution(directory, p + "conv_out", inputs: channels, outputs: s.latentChannels, kernel: 3)
        quantConv = try Convolution(
            directory,
            TensorManifest.VQNames.quantConv,
            inputs: s.latentChannels,
            outputs: s.embedDim,
            kernel: 1
        )
    }

    /// The side of the square images the encoder takes.
    public var resolution: Int { shape.resolution }

    public func encode(_ pixels: FeatureMap) -> Matrix {
        precondition(
            pixels.channels == shape.inChannels && pixels.height == shape.resolution
                && pixels.width == shape.resolution,
            "the encoder takes \(shape.inChannels)x\(shape.resolution)x\(shape.resolution) pixels"
        )
        var x = convIn(pixels)
        for level in levels {
            for (j, block) in level.blocks.enumerated() {
                x = block(x)
                if j < level.attention.count { x = level.attention[j](x) }
            }
            if let downsample = level.downsample { x = downsample(x) }
        }
        x = midBlock2(midAttention(midBlock1(x)))
        x = normOut(x)
        x.swish()
        x = quantConv(convOut(x))
        // [C, g, g] → rows in raster order [g·g, C]
        var latents = Matrix(rows: x.plane, columns: x.channels)
        for c in 0..<x.channels {
            for i in 0..<x.plane { latents.storage[i * x.channels + c] = x.values[c * x.plane + i] }
        }
        return latents
    }
}

/// The VQ-VAE decoder as Orthus uses it: `post_quant_conv → decoder` on unquantized latents `[grid², embedDim]` in
/// raster order, giving pixels `[outChannels, R, R]` (about [−1, 1]).
public struct VQDecoder: Sendable {
    let shape: VQShape
    let postQuantConv, convIn: Convolution
    let midBlock1, midBlock2: ResnetBlock
    let midAttention: AttentionBlock
    /// In run order: the deepest level first.
    let levels: [(blocks: [ResnetBlock], attention: [AttentionBlock], upsample: Convolution?)]
    let normOut: GroupNorm
    let convOut: Convolution

    public init(directory: any TensorSource) throws {
        let s = VQShape(directory.configuration.vqConfig ?? VQConfiguration())
        let p = TensorManifest.VQNames.decoder
        shape = s
        var channels = s.baseChannels * s.multiplier[s.multiplier.count - 1]
        postQuantConv = try Convolution(
            directory,
            TensorManifest.VQNames.postQuantConv,
            inputs: s.embedDim,
            outputs: s.latentChannels,
            kernel: 1
        )
        convIn = try Convolution(directory, p + "conv_in", inputs: s.latentChannels, outputs: channels, kernel: 3)
        midBlock1 = try ResnetBlock(directory, p + "mid.block_1", inputs: channels, outputs: channels)
        midAttention = try AttentionBlock(directory, p + "mid.attn_1", channels: channels)
        midBlock2 = try ResnetBlock(directory, p + "mid.block_2", inputs: channels, outputs: channels)
        var levels: [(blocks: [ResnetBlock], attention: [AttentionBlock], upsample: Convolution?)] = []
        var resolution = s.grid
        for level in stride(from: s.multiplier.count - 1, through: 0, by: -1) {
            let out = s.baseChannels * s.multiplier[level]
            var blocks: [ResnetBlock] = []
            var attention: [AttentionBlock] = []
            for j in 0...s.resBlocks {
                blocks.append(try ResnetBlock(directory, p + "up.\(level).block.\(j)", inputs: channels, outputs: out))
                channels = out
                if s.attentionResolutions.contains(resolution) {
                    attention.append(try AttentionBlock(directory, p + "up.\(level).attn.\(j)", channels: channels))
                }
            }
            var upsample: Convolution?
            if level != 0 {
                upsample = try Convolution(
                    directory,
                    p + "up.\(level).upsample.conv",
                    inputs: channels,
                    outputs: channels,
                    kernel: 3
                )
                resolution *= 2
            }
            levels.append((blocks, attention, upsample))
        }
        self.levels = levels
        normOut = try GroupNorm(directory, p + "norm_out", channels: channels)
        convOut = try Convolution(directory, p + "conv_out", inputs: channels, outputs: s.outChannels, kernel: 3)
    }

    /// Patches per image (`grid²`).
    public var patchCount: Int { shape.grid * shape.grid }
    /// Pixels per side of a decoded image.
    public var resolution: Int { shape.resolution }
    /// Width of one latent.
    public var latentDim: Int { shape.embedDim }

    public func decode(_ latents: Matrix) -> FeatureMap {
        precondition(
            latents.rows == patchCount && latents.columns == shape.embedDim,
            "the decoder takes \(patchCount) latents of \(shape.embedDim)"
        )
        // rows in raster order [g·g, C] → [C, g, g]
        let g = shape.grid
        var x = FeatureMap(channels: shape.embedDim, height: g, width: g)
        for i in 0..<(g * g) {
            for c in 0..<shape.embedDim { x.values[c * g * g + i] = latents.storage[i * shape.embedDim + c] }
        }
        x = convIn(postQuantConv(x))
        x = midBlock2(midAttention(midBlock1(x)))
        for level in levels {
            for (j, block) in level.blocks.enumerated() {
                x = block(x)
                if j < level.attention.count { x = level.attention[j](x) }
            }
            if let upsample = level.upsample { x = upsample(x.upsampled()) }
        }
        x = normOut(x)
        x.swish()
        return convOut(x)
    }
}
