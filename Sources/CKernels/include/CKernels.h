#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

/// Row-invariant kernels (float32 arithmetic; the 8-bit product's block sums in integers), compiled once per
/// instruction set and chosen at run time.
///
/// Every kernel fixes, per output element, the exact sequence of floating-point operations: which products are
/// fused, in what order they are summed. Rows, blocking, threads and the vector width of the path never enter it.
/// So a row's result never depends on which other rows share the call (outputs are independent of batch composition
/// and topology), and the AVX-512, AVX2+FMA and portable paths give bit-identical results (a cluster may mix hosts).

/// The instruction-set paths. Every path exists in every build; `ck_path_available` says which this CPU can run.
enum {
    CK_PATH_PORTABLE = 0,  ///< generic vectors: NEON on ARM; on x86 without FMA the fused ops are libm's fmaf
    CK_PATH_AVX2 = 1,      ///< AVX2 + FMA (x86-64 since 2013)
    CK_PATH_AVX512 = 2,    ///< AVX-512F
    CK_PATH_COUNT = 3
};

int ck_path_available(int path);
/// The fastest path this CPU can run.
int ck_path_best(void);

/// Weight matrices `[n, k]` are held packed in panels of CK_PANEL outputs: panel q holds outputs 16q..16q+15 as
/// `[k][16]` (element (p, l) at p·16 + l), so a panel is one contiguous stream and sixteen outputs' weights for one
/// input are one vector. Outputs are padded with zeros to a multiple of CK_GROUP (a group of panels, the unit the
/// threads split on).
#define CK_PANEL 16
#define CK_GROUP 64

/// Element types of packed weights (8-bit weights have their own product, ck_linear_q8).
enum { CK_WEIGHTS_F32 = 0, CK_WEIGHTS_BF16 = 1, CK_WEIGHTS_F16 = 2 };

/// 8-bit weights, llama.cpp's Q8_0 idea: each output's inputs in blocks of 32 with one scale, stored as f16, and
/// values in -127...127. A q8 panel is ceil(k / 32) blocks of CK_Q8_BLOCK_BYTES: the 16 outputs' scales (f16), then
/// eight groups of four inputs, each [16 outputs][4 inputs] int8, so one output's four values are adjacent bytes.
#define CK_Q8_BLOCK 32
#define CK_Q8_BLOCK_BYTES (CK_PANEL * 2 + CK_Q8_BLOCK * CK_PANEL)

/// Writes one output's int8 values (k of them) and f16 scale bits (one a block) into `lane` of a q8 panel. Returns
/// -1 if a value is -128, which Q8_0 never produces and the kernels do not take (it is packed all the same), else 0.
int ck_pack_row_q8(const signed char *values, const unsigned short *scales, size_t k, void *panel, size_t lane);
/// Reads them back.
void ck_unpack_row_q8(const void *panel, size_t k, size_t lane, signed char *values, unsigned short *scales);

/// Quantizes activations for ck_linear_q8 as Q8_0 quantizes weights, each row on its own: per block of 32 inputs
/// d = max|x| / 127 (float32, not rounded to f16), value = roundf(x · (1/d)) (ties away from zero) within ±127, 0
/// where d is 0. Writes, for row i and block b of B = ceil(k / 32): values[(i·B + b)·32 ..] (the last block padded
/// with zeros), scales[i·B + b] = d and sums[i·B + b] = the sum of the block's values. A NaN or infinity in a block
/// makes its d NaN or infinite, so it reaches the row's outputs.
void ck_q8_quantize_rows(const float *a, size_t lda, size_t m, size_t k, signed char *values, float *scales,
                         int *sums);

/// The 8-bit product of quantized activations (ck_q8_quantize_rows of m rows of k inputs) and q8 panels:
/// c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + alpha · acc, where acc is one chain over the blocks b in order,
/// from zero: acc = fma(float(s_b), d_b · w_b, acc), with s_b the block's integer dot product of activation and
/// weight values (exact: its order cannot matter), d_b the activations' scale and w_b the weights' (widened from
/// f16). `panels` and `n` are as for ck_linear. So every path and every row count gives the same bits, and the products are integer multiply-adds of
/// bytes (VNNI on AVX-512, pmaddubsw on AVX2) instead of widening each weight to float.
void ck_linear_q8(int path, const signed char *values, const float *scales, const int *sums, size_t m,
                  const void *panels, size_t k, size_t n, float *c, size_t ldc, float alpha, int accumulate);

/// Writes one row of `k` elements (2 or 4 bytes each) into `lane` of a packed panel of the same element size.
void ck_pack_row(const void *row, size_t k, size_t element_bytes, void *panel, size_t lane);
/// Reads `lane` of a packed panel back into a row.
void ck_unpack_row(const void *panel, size_t k, size_t element_bytes, size_t lane, void *row);

/// c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + alpha · Σ_p a[i*lda + p] · w[j][p], for i < m, j < n, where the
/// sum is one chain of fused multiply-adds in order of p from zero (acc = fma(a, w, acc)), then multiplied by alpha,
/// then added to c. `panels` is packed weights (type `weights`) from a panel boundary; `n` counts the outputs wanted
/// from there. bf16 and f16 weights are widened in registers (a bf16 value is the high half of the float32 with its
/// bits; every f16 value is a float32 value), so they give exactly what a float32 copy would.
void ck_linear(int path, int weights, const float *a, size_t lda, size_t m, const void *panels, size_t k, size_t n,
               float *c, size_t ldc, float alpha, int accumulate);

/// c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + alpha · dot(a[i*lda ..], b[j*ldb ..]) over k values, for i < m,
/// j < n, with b unpacked (attention's keys, a codebook). Sixteen lanes accumulate k = 16t + lane with fused
/// multiply-adds in order of t, the lanes are summed by a fixed tree, then the k tail is added in order.
void ck_dot_rows(int path, const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, size_t k,
                 float *c, size_t ldc, float alpha, int accumulate);

/// out[i*ldo + e] = sum over j < t, in order, of p[i*ldp + j] * v[j*ldv + e], for i < m and e < d.
/// (Attention: probabilities times values.)
void ck_weighted_rows(int path, const float *p, size_t ldp, size_t m, const float *v, size_t ldv, size_t t, size_t d,
                      float *out, size_t ldo);

/// The sum of n floats, read once front to back with four independent vector accumulators: a STREAM-like read
/// of memory, used to measure the machine's read bandwidth.
float ck_stream_sum(const float *p, size_t n);

/// A spin-wait hint for busy loops (x86 PAUSE): yields the core's resources to its sibling thread and saves power.
static inline void ck_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#endif
