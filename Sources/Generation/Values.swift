import Tensor

/// One input position of a sequence: a token id, or a continuous image latent (fed at an `<image>` position).
public enum StageInput: Sendable, Equatable {
    case token(Int)
    case latent([Float])
}

/// One sequence's rows in a micro-batch: `count` positions of sequence `sequenceID` starting at `start`.
public struct SequenceSlice: Sendable, Equatable {
    public var sequenceID: UInt64
    public var start: Int
    public var count: Int

    public init(sequenceID: UInt64, start: Int, count: Int) {
        self.sequenceID = sequenceID
        self.start = start
        self.count = count
    }
}

/// Why a job's text ended.
public enum FinishReason: Sendable, Equatable {
    /// It produced a stop id (SEP or EOS); the id is the last token and is not decoded as text.
    case stopToken(Int)
    /// It produced as many tokens (interleaved: positions) as it was allowed.
    case maxTokens
    /// Its sequence reached the model's context.
    case contextFull
    /// Text-to-image: every patch of the image is sampled.
    case imageComplete
}

/// A piece of an answer, in order: a run of text token ids, or one image's latents `[patch][latent]` (VQ scale).
public enum AnswerPiece: Equatable, Sendable {
    case text([Int])
    case image([[Float]])
}

/// What keys a patch's initial DDIM noise: the job's seed, the image's index in the job and the patch's index in the
/// image (raster order). The same key gives the same noise on any worker, in any batch.
public struct PatchKey: Sendable, Equatable, Hashable {
    public var seed: UInt64
    public var image: Int
    public var patch: Int

    public init(seed: UInt64, image: Int, patch: Int) {
        self.seed = seed
        self.image = image
        self.patch = patch
    }
}

/// What a stage receives: the first stage takes token ids and image latents, later stages the previous stage's rows.
public enum StageBatchInput: Sendable {
    case inputs([StageInput])
    case hidden(Matrix)

    /// Positions the micro-batch carries (its rows).
    public var rows: Int {
        switch self {
        case .inputs(let inputs): inputs.count
        case .hidden(let hidden): hidden.rows
        }
    }
}
