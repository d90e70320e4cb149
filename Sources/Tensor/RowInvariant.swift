internal import CKernels
import Dispatch
import Synchronization

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
        accumulate: Bool = false,
        path: KernelPath = .current
    ) {
        guard m > 0, n > 0 else { return }
        let (ap, bp, cp) = (Pointer(a), Pointer(b), MutablePointer(c))
        let flag: Int32 = accumulate ? 1 : 0
        ComputeThreads.split(columns: n, granule: 4, work: m * n * k) { columns in
            ck_dot_rows(
                Int32(path.rawValue),
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
        ldo: Int,
        path: KernelPath = .current
    ) {
        guard m > 0, d > 0 else { return }
        ck_weighted_rows(Int32(path.rawValue), p, ldp, m, v, ldv, t, d, out, ldo)
    }

}

/// Memory probes for benchmarks.
public enum MemoryProbe {
    /// Reads `values` once front to back, split into `threads` contiguous parts read at once, and returns their sum
    /// (so the reads cannot be optimized away).
    public static func streamSum(_ values: [Float], threads: Int = 1) -> Float {
        values.withUnsafeBufferPointer { buffer in
            let total = buffer.count
            let part = total / max(1, threads)
            guard threads > 1, part > 0 else { return ck_stream_sum(buffer.baseAddress!, total) }
            let base = Pointer(buffer.baseAddress!)
            let sums = Mutex([Float](repeating: 0, count: threads))
            DispatchQueue.concurrentPerform(iterations: threads) { index in
                let count = index == threads - 1 ? total - index * part : part
                let sum = ck_stream_sum(base.value + index * part, count)
                sums.withLock { $0[index] = sum }
            }
            return sums.withLock { $0.reduce(0, +) }
        }
    }
}
