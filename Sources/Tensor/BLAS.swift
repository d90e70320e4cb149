internal import CBLAS

/// Matrix products through OpenBLAS (sgemm).
///
/// The model's products use `RowInvariant` instead, whose results do not depend on the row count; sgemm is the
/// reference the kernel tests compare against. The corresponding C function is `cblas_sgemm`. Weights are stored as PyTorch `nn.Linear` does, `[out, in]`, so a
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

    /// `c[m, n] = a[m, k] · b[k, n]` for row-major matrices with leading dimensions `lda`, `ldb`, `ldc`.
    public static func multiply(
        _ a: UnsafePointer<Float>,
        lda: Int,
        _ b: UnsafePointer<Float>,
        ldb: Int,
        into c: UnsafeMutablePointer<Float>,
        ldc: Int,
        m: Int,
        n: Int,
        k: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor,
            CblasNoTrans,
            CblasNoTrans,
            Int32(m),
            Int32(n),
            Int32(k),
            1,
            a,
            Int32(lda),
            b,
            Int32(ldb),
            0,
            c,
            Int32(ldc)
        )
    }
}
