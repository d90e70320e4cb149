import Checkpoint
import Generation
import Heads
import Model
import Tensor
import Tokenizer

/// The whole backbone plus the LM head in one process: the single-process engine for text, and the numerical
/// reference for the distributed mode.
public struct TextModel: Sendable {
    public let directory: ModelDirectory
    public let stack: LayerStack
    public let head: LMHead

    /// Loads every layer, the embeddings, the final norm and the LM head.
    public init(directory: ModelDirectory) throws {
        self.directory = directory
        stack = try LayerStack(directory: directory, layers: 0..<directory.configuration.layerCount)
        head = try LMHead(directory: directory)
    }

    public var configuration: OrthusConfiguration { directory.configuration }

    /// Final-normed hidden states and logits at every position of `ids` (one fresh sequence).
    public func logits(ids: [Int]) throws -> (logits: Matrix, hidden: Matrix) {
        var cache = [stack.makeCache()]
        let hidden = try prefill(ids, caches: &cache)
        return (head.logits(hidden), hidden)
    }

    /// Feeds `ids` to the sequence whose cache is `caches[0]`, in chunks of at most `chunk` positions, and returns
    /// the final-normed hidden state of every position.
    public func prefill(_ ids: [Int], caches: inout [KVCache], chunk: Int = 256) throws -> Matrix {
        try prefill(ids.map(StageInput.token), caches: &caches, chunk: chunk)
    }

    /// Prefill of inputs that may hold image latents (soft-embedded at their positions).
    public func prefill(_ inputs: [StageInput], caches: inout [KVCache], chunk: Int = 256) throws -> Matrix {
        precondition(caches.count == 1, "prefill runs one sequence")
        var hidden = Matrix(rows: 0, columns: configuration.hiddenSize)
        var start = 0
        while start < inputs.count {
            let part = Array(inputs[start..<min(inputs.count, start + chunk)])
            var x = try stack.embed(part)
            try stack.forward(&x, rowCounts: [part.count], caches: &caches)
            hidden.append(rowsOf: x)
            start += part.count
        }
        return hidden
    }
}
