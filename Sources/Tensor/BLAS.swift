internal import CBLAS

/// Matrix products through OpenBLAS.
///
/// The corresponding C function is `cblas_sgemm`. Weights are stored as PyTorch `nn.Linear` does, `[out, in]`, so a
/// linear layer is `x · Wᵀ`.
public enum BLAS {
    /// `y[m, n] = x[m, k] · w[n, k]ᵀ`, optionally accumulating into `y` (`beta = 1`).
    public static func linear(
        _ x: UnsafePointer<Float>,
        rows m: Int,
        inputs k: Int,
        weight w: UnsafePointer<Float>,
        outputs n: Int,
        into y: UnsafeMutablePointer<Float>,
        accumulate: Bool = false
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor,
            CblasNoTrans,
            CblasTrans,
            Int32(m),
            Int32(n),
            Int32(k),
            1,
            x,
            Int32(k),
            w,
            Int32(k),
            accumulate ? 1 : 0,
            y,
            Int32(n)
        )
    }

    /// `c[m, n] = alpha · a[m, k] · b[k, n]` with leading dimensions, for attention score and value products.
    public static func gemm(
        transposeB: Bool,
        m: Int,
        n: Int,
        k: Int,
        alpha: Float,
        a: UnsafePointer<Float>,
        lda: Int,
        b: UnsafePointer<Float>,
        ldb: Int,
        c: UnsafeMutablePointer<Float>,
        ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor,
            CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m),
            Int32(n),
            Int32(k),
            alpha,
            a,
            Int32(lda),
            b,
            Int32(ldb),
            0,
            c,
            Int32(ldc)
        )
    }

    /// Sets the number of OpenBLAS worker threads for this process. The corresponding C function is
    /// `openblas_set_num_threads`.
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of OpenBLAS worker threads. The corresponding C function is `openblas_get_num_threads`.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }
}
