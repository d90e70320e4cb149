import Checkpoint
import Tensor

/// The text head: final-normed hidden state → logits over the vocabulary (`lm_head.weight`, `[vocab, hidden]`).
public struct LMHead: Sendable {
    public let vocabSize: Int
    public let hiddenSize: Int
    let weights: Weights

    /// Bytes of the head's weights as held in memory.
    public var residentBytes: Int { weights.residentBytes }

    /// Loads `lm_head.weight` from `directory`.
    public init(directory: ModelDirectory) throws {
        let c = directory.configuration
        vocabSize = c.vocabSize
        hiddenSize = c.hiddenSize
        weights = try directory.loadWeights(TensorManifest.lmHead, shape: TensorManifest(c).lmHeadShape)
    }

    /// Logits `[rows, vocab]` for hidden states `[rows, hidden]`.
    public func logits(_ hidden: Matrix) -> Matrix {
        precondition(hidden.columns == hiddenSize, "hidden width \(hidden.columns) ≠ \(hiddenSize)")
        return RowInvariant.linear(hidden, weights: weights)
    }
}
