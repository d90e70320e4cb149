#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

/// Row-invariant float32 kernels.
///
/// Every output element is computed by the same sequence of operations whatever the number of rows, the blocking
/// or the vector width of the host: 16 lanes accumulate k = 16t + lane with fused multiply-adds in order of t, the
/// lanes are summed by a fixed tree, then the k tail is added in order. A row's result therefore never depends on
/// which other rows share the call, which is what makes outputs independent of batch composition and topology.

/// c[i*ldc + j] = (accumulate ? c[i*ldc + j] : 0) + alpha * dot(a[i*lda ..], b[j*ldb ..]) over k values,
/// for i < m, j < n. A linear layer `y = x·wᵀ` is (a = x, b = w, alpha = 1).
void ck_dot_rows(const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, size_t k,
                 float *c, size_t ldc, float alpha, int accumulate);

/// The same for weights stored as bfloat16 (raw bits), widened in registers: results are bit-identical to
/// ck_dot_rows on the float32 widening of the same weights, with half the bytes read. Each row of b is stored
/// paired: in every whole block of 32 values, 16-bit slot 2l holds value l and slot 2l + 1 holds value 16 + l (so a
/// 32-bit word widens to two values by a shift and a mask); values past the last whole block stay in order.
void ck_dot_rows_bf16(const float *a, size_t lda, size_t m, const unsigned short *b, size_t ldb, size_t n, size_t k,
                      float *c, size_t ldc, float alpha, int accumulate);

/// out[i*ldo + e] = sum over j < t, in order, of p[i*ldp + j] * v[j*ldv + e], for i < m and e < d.
/// (Attention: probabilities times values.)
void ck_weighted_rows(const float *p, size_t ldp, size_t m, const float *v, size_t ldv, size_t t, size_t d,
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
