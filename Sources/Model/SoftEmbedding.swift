import Tensor

/// Orthus's soft vision embedding (docs/model.md §3.1): a continuous latent v becomes
/// `softmax(−‖v − C_k‖²) · E[4 + k]` over the `codebook_in` entries C_k and the image-token embedding rows E.
///
/// The distance is expanded as the reference computes it, `‖v‖² + ‖C_k‖² − 2 v·C_k`, with no temperature and no
/// square root. A whole image is two matrix products: latents × codebookᵀ, then weights × embedding rows.
public struct SoftEmbedding: Sendable {
    /// `[codes, latentDim]`.
    let codebook: [Float]
    /// `‖C_k‖²` per code.
    let codebookNorms: [Float]
    public let codes: Int
    public let latentDim: Int
    /// The first embedding row of image code 0 (Chameleon: id 4).
    public static let firstImageRow = 4

    public init(codebook: [Float], codes: Int, latentDim: Int) {
        precondition(
            codebook.count == codes * latentDim,
            "codebook of \(codebook.count) values for \(codes)x\(latentDim)"
        )
        self.codebook = codebook
        self.codes = codes
        self.latentDim = latentDim
        codebookNorms = (0..<codes).map { k in
            var sum: Float = 0
            for i in 0..<latentDim { sum += codebook[k * latentDim + i] * codebook[k * latentDim + i] }
            return sum
        }
    }

    /// Embeddings `[rows, hidden]` for latents `[rows, latentDim]`, using rows 4..<4+codes of `table` (`[vocab, hidden]`).
    public func embed(_ latents: Matrix, table: [Float], hidden: Int) -> Matrix {
        precondition(latents.columns == latentDim, "latent width \(latents.columns) ≠ \(latentDim)")
        precondition(
            table.count >= (Self.firstImageRow + codes) * hidden,
            "embedding table too small for \(codes) codes"
        )
        let rows = latents.rows
        var weights = [Float](repeating: 0, count: rows * codes)
        latents.storage.withUnsafeBufferPointer { v in
            codebook.withUnsafeBufferPointer { c in
                weights.withUnsafeMutableBufferPointer { w in
                    RowInvariant.dotRows(
                        v.baseAddress!,
                        lda: latentDim,
                        rows: rows,
                        c.baseAddress!,
                        ldb: latentDim,
                        columns: codes,
                        depth: latentDim,
                        into: w.baseAddress!,
                        ldc: codes
                    )
                    for r in 0..<rows {
                        var norm: Float = 0
                        for i in 0..<latentDim { norm += v[r * latentDim + i] * v[r * latentDim + i] }
                        let row = w.baseAddress! + r * codes
                        // softmax(−d) with d = ‖v‖² + ‖C‖² − 2 v·C
                        for k in 0..<codes { row[k] = -((norm + codebookNorms[k]) - 2 * row[k]) }
                        RowKernels.softmax(row, count: codes)
                    }
                }
            }
        }
        var out = Matrix(rows: rows, columns: hidden)
        weights.withUnsafeBufferPointer { w in
            table.withUnsafeBufferPointer { e in
                out.storage.withUnsafeMutableBufferPointer { o in
                    RowInvariant.weightedRows(
                        w.baseAddress!,
                        ldp: codes,
                        rows: rows,
                        e.baseAddress! + Self.firstImageRow * hidden,
                        ldv: hidden,
                        count: codes,
                        width: hidden,
                        into: o.baseAddress!,
                        ldo: hidden
                    )
                }
            }
        }
        return out
    }
}
