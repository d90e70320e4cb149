internal import CKernels

/// Matrix products whose result for a row never depends on the other rows of the call (see `CKernels.h`).
///
/// OpenBLAS sgemm blocks differently for different row counts, so the same row can round differently in a batch
/// of 1 and a batch of 10 (measured here: differences of ~1e-7 in hidden states). These kernels fix the reduction
/// order per output element, which keeps outputs identical across batch compositions and cluster topologies.
public enum RowInvariant {
    /// `c[i, j] = (accumulate ? c[i, j] : 0) + alpha · dot(a[i, 0..<k], b[j, 0..<k])` with leading dimensions.
    public static func dotRows(
        _ a: UnsafePointer<Float>,
        lda: Int,
        rows m: Int,
        _ b: UnsafePointer<Float>,
        ldb: Int,
        columns n: Int,
        depth k: Int,
        into c: UnsafeMutablePointer<Float>,
        ldc: Int,
        alpha: Float = 1,
        accumulate: Bool = false
    ) {
        guard m > 0, n > 0 else { return }
        let (ap, bp, cp) = (Pointer(a), Pointer(b), MutablePointer(c))
        let flag: Int32 = accumulate ? 1 : 0
        ComputeThreads.split(columns: n, work: m * n * k) { columns in
            ck_dot_rows(
                ap.value,
                lda,
                m,
                bp.value + columns.lowerBound * ldb,
                ldb,
                columns.count,
                k,
                cp.value + columns.lowerBound,
                ldc,
                alpha,
                flag
            )
        }
    }

    /// `y = x · wᵀ` (or `y += x · wᵀ`) for `x` `[m, k]` and a weight stored `[n, k]`.
    public static func linear(
        _ x: UnsafePointer<Float>,
        rows m: Int,
        inputs k: Int,
        weight w: UnsafePointer<Float>,
        outputs n: Int,
        into y: UnsafeMutablePointer<Float>,
        accumulate: Bool = false
    ) {
        dotRows(x, lda: k, rows: m, w, ldb: k, columns: n, depth: k, into: y, ldc: n, accumulate: accumulate)
    }

    /// `out[i, e] = Σ_j p[i, j] · v[j, e]`, summed in order of j (attention probabilities times values).
    public static func weightedRows(
        _ p: UnsafePointer<Float>,
        ldp: Int,
        rows m: Int,
        _ v: UnsafePointer<Float>,
        ldv: Int,
        count t: Int,
        width d: Int,
        into out: UnsafeMutablePointer<Float>,
        ldo: Int
    ) {
        guard m > 0, d > 0 else { return }
        ck_weighted_rows(p, ldp, m, v, ldv, t, d, out, ldo)
    }

    /// `y = x · wᵀ (+ bias)` for a weight stored `[outputs, x.columns]`, or `y += x · wᵀ` with `accumulate`.
    public static func linear(
        _ x: Matrix,
        weight: [Float],
        bias: [Float]? = nil,
        into y: inout Matrix,
        accumulate: Bool = false
    ) {
        precondition(weight.count == y.columns * x.columns, "weight of \(weight.count) for \(x.columns)→\(y.columns)")
        precondition(x.rows == y.rows, "row counts \(x.rows) and \(y.rows) differ")
        let (rows, inputs, outputs) = (x.rows, x.columns, y.columns)
        x.storage.withUnsafeBufferPointer { xs in
            weight.withUnsafeBufferPointer { w in
                y.storage.withUnsafeMutableBufferPointer { ys in
                    linear(
                        xs.baseAddress!,
                        rows: rows,
                        inputs: inputs,
                        weight: w.baseAddress!,
                        outputs: outputs,
                        into: ys.baseAddress!,
                        accumulate: accumulate
                    )
                    guard let bias else { return }
                    for r in 0..<rows {
                        for c in 0..<outputs { ys[r * outputs + c] += bias[c] }
                    }
                }
            }
        }
    }

    /// `x · wᵀ (+ bias)` as a new matrix of `outputs` columns.
    public static func linear(_ x: Matrix, weight: [Float], bias: [Float]? = nil, outputs: Int) -> Matrix {
        var y = Matrix(rows: x.rows, columns: outputs)
        linear(x, weight: weight, bias: bias, into: &y)
        return y
    }
}

/// Memory probes for benchmarks.
public enum MemoryProbe {
    /// Reads `values` once front to back and returns their sum (so the read cannot be optimized away).
    public static func streamSum(_ values: [Float]) -> Float {
        values.withUnsafeBufferPointer { ck_stream_sum($0.baseAddress!, $0.count) }
    }

    public static func streamSum(_ values: UnsafeBufferPointer<Float>) -> Float {
        ck_stream_sum(values.baseAddress!, values.count)
    }
}
