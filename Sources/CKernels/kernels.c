#include "CKernels.h"

#include <math.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

static inline v16 load16(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);  // rows need not be 64-byte aligned
    return v;
}

static inline void store16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

static inline v16 fma16(v16 a, v16 b, v16 c) { return __builtin_elementwise_fma(a, b, c); }

/// The fixed reduction tree: halves, then quarters, …
static inline float reduce16(v16 v) {
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

static inline void store(float *c, float value, float alpha, int accumulate) {
    value *= alpha;
    *c = accumulate ? *c + value : value;
}

/// bf16 weights are widened in registers: a bf16 value is the high half of the float32 with the same bits, so the
/// products below see exactly the values a float32 copy would hold, and give bit-identical results.
typedef unsigned short u16x16 __attribute__((vector_size(32)));
typedef unsigned int u32x16 __attribute__((vector_size(64)));

static inline v16 load16_f32(const float *row, size_t p, size_t k) {
    (void)k;
    return load16(row + p);
}

/// bf16 rows are stored paired (see ck_dot_rows_bf16): in each block of 32, 32-bit word l holds element l in its low
/// half and element 16 + l in its high half, so one load gives elements p..p+15 in order by a shift (p % 32 == 0) or
/// a mask (p % 32 == 16), with no shuffle. Past the last whole block of 32 the row is in natural order.
static inline v16 load16_bf16(const unsigned short *row, size_t p, size_t k) {
    size_t k32 = k & ~(size_t)31;
    u32x16 w;
    if (p < k32) {
        memcpy(&w, row + (p & ~(size_t)31), sizeof w);
        w = (p & 16) ? (w & 0xFFFF0000u) : (w << 16);
    } else {
        u16x16 h;
        memcpy(&h, row + p, sizeof h);
        w = __builtin_convertvector(h, u32x16) << 16;
    }
    v16 v;
    memcpy(&v, &w, sizeof v);
    return v;
}

static inline float scalar_f32(const float *row, size_t p) { return row[p]; }

/// Asks for `bytes` from `from` on into the outer caches. The kernels read a block of weight rows as that many
/// interleaved streams, which the hardware prefetchers pick up only after some misses each, and rows of a few KB
/// (hidden 1024 to 2048 in bf16) end soon after: one thread read well below the bandwidth (BENCHMARKS.md, "Kernels
/// for one thread"). So while a block is read, the next block (contiguous when ldb == k, as weights are) is requested
/// front to back at the same pace. A hint only: it never changes a result.
static inline void prefetch_lines(const char *from, size_t bytes) {
    for (size_t q = 0; q < bytes; q += 64) __builtin_prefetch(from + q, 0, 1);
}

/// The k tail lies past the last whole block of 32, where bf16 rows are in natural order.
static inline float scalar_bf16(const unsigned short *row, size_t p) {
    unsigned int w = (unsigned int)row[p] << 16;
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

/// The kernels for one weight element type: the same operations in the same order for every element type.
#define DEFINE_DOT_ROWS(NAME, BTYPE, LOADB, SCALARB)                                                                  \
    static inline float NAME##_finish(v16 acc, const float *a, const BTYPE *b, size_t k16, size_t k) {              \
        float tail = 0;                                                                                              \
        for (size_t p = k16; p < k; p++) tail = fmaf(a[p], SCALARB(b, p), tail);                                    \
        return reduce16(acc) + tail;                                                                                 \
    }                                                                                                                \
    /* A 4x4 block of outputs: each weight row is read once for four activation rows. */                            \
    static inline __attribute__((always_inline)) void NAME##_block4x4(const float *a, size_t lda, const BTYPE *b,   \
                                                                      size_t ldb, size_t k, float *c, size_t ldc,  \
                                                                      float alpha, int accumulate,                 \
                                                                      const char *next) {                          \
        v16 acc[4][4];                                                                                               \
        for (int i = 0; i < 4; i++)                                                                                  \
            for (int j = 0; j < 4; j++) acc[i][j] = (v16){0};                                                        \
        size_t k16 = k & ~(size_t)15;                                                                                \
        for (size_t p = 0; p < k16; p += 16) {                                                                       \
            if (next) prefetch_lines(next + p * 4 * sizeof(BTYPE), 4 * 16 * sizeof(BTYPE));                           \
            v16 bv[4];                                                                                               \
            for (int j = 0; j < 4; j++) bv[j] = LOADB(b + j * ldb, p, k);                                              \
            for (int i = 0; i < 4; i++) {                                                                            \
                v16 av = load16(a + i * lda + p);                                                                    \
                for (int j = 0; j < 4; j++) acc[i][j] = fma16(av, bv[j], acc[i][j]);                                 \
            }                                                                                                        \
        }                                                                                                            \
        for (int i = 0; i < 4; i++)                                                                                  \
            for (int j = 0; j < 4; j++)                                                                              \
                store(c + i * ldc + j, NAME##_finish(acc[i][j], a + i * lda, b + j * ldb, k16, k), alpha,          \
                      accumulate);                                                                                   \
    }                                                                                                                \
    /* One row against up to four weight rows (decode shapes and row tails): same arithmetic per element. */        \
    static inline void NAME##_block1xN(const float *a, const BTYPE *b, size_t ldb, size_t n, size_t k, float *c,    \
                                       float alpha, int accumulate, const char *next) {                              \
        v16 acc[4] = {{0}, {0}, {0}, {0}};                                                                           \
        size_t k16 = k & ~(size_t)15;                                                                                \
        if (n == 4) {                                                                                                \
            for (size_t p = 0; p < k16; p += 16) {                                                                   \
                if (next) prefetch_lines(next + p * 4 * sizeof(BTYPE), 4 * 16 * sizeof(BTYPE));                       \
                v16 av = load16(a + p);                                                                              \
                for (int j = 0; j < 4; j++) acc[j] = fma16(av, LOADB(b + j * ldb, p, k), acc[j]);                      \
            }                                                                                                        \
        } else {                                                                                                     \
            for (size_t p = 0; p < k16; p += 16) {                                                                   \
                v16 av = load16(a + p);                                                                              \
                for (size_t j = 0; j < n; j++) acc[j] = fma16(av, LOADB(b + j * ldb, p, k), acc[j]);                   \
            }                                                                                                        \
        }                                                                                                            \
        for (size_t j = 0; j < n; j++)                                                                               \
            store(c + j, NAME##_finish(acc[j], a, b + j * ldb, k16, k), alpha, accumulate);                         \
    }                                                                                                                \
    /* One row against eight weight rows: for a single row (decode at batch 1) eight independent accumulators and */ \
    /* eight weight streams keep one thread's loads closer to the memory bandwidth than four. */                      \
    static inline void NAME##_block1x8(const float *a, const BTYPE *b, size_t ldb, size_t k, float *c, float alpha,  \
                                       int accumulate, const char *next) {                                           \
        v16 acc[8];                                                                                                  \
        for (int j = 0; j < 8; j++) acc[j] = (v16){0};                                                               \
        size_t k16 = k & ~(size_t)15;                                                                                \
        for (size_t p = 0; p < k16; p += 16) {                                                                       \
            if (next) prefetch_lines(next + p * 8 * sizeof(BTYPE), 8 * 16 * sizeof(BTYPE));                           \
            v16 av = load16(a + p);                                                                                  \
            for (int j = 0; j < 8; j++) acc[j] = fma16(av, LOADB(b + j * ldb, p, k), acc[j]);                          \
        }                                                                                                            \
        for (int j = 0; j < 8; j++) store(c + j, NAME##_finish(acc[j], a, b + j * ldb, k16, k), alpha, accumulate); \
    }                                                                                                                \
    void NAME(const float *a, size_t lda, size_t m, const BTYPE *b, size_t ldb, size_t n, size_t k, float *c,       \
              size_t ldc, float alpha, int accumulate) {                                                             \
        size_t m4 = m & ~(size_t)3, n4 = n & ~(size_t)3, start = 0;                                                  \
        /* `next`: the weight rows after a block, if a whole block of the same height follows (else NULL). */      \
        if (m == 1)                                                                                                  \
            for (; start + 8 <= n; start += 8) {                                                                     \
                const char *next = start + 16 <= n ? (const char *)(b + (start + 8) * ldb) : NULL;                   \
                NAME##_block1x8(a, b + start * ldb, ldb, k, c + start, alpha, accumulate, next);                     \
            }                                                                                                        \
        for (size_t j = start; j < n4; j += 4) {                                                                     \
            const char *next = j + 8 <= n ? (const char *)(b + (j + 4) * ldb) : NULL;                                \
            size_t i = 0;                                                                                            \
            for (; i < m4; i += 4)                                                                                   \
                NAME##_block4x4(a + i * lda, lda, b + j * ldb, ldb, k, c + i * ldc + j, ldc, alpha, accumulate,     \
                                i == 0 ? next : NULL);                                                               \
            for (; i < m; i++)                                                                                       \
                NAME##_block1xN(a + i * lda, b + j * ldb, ldb, 4, k, c + i * ldc + j, alpha, accumulate,            \
                                i == 0 ? next : NULL);                                                               \
        }                                                                                                            \
        if (n4 < n)                                                                                                  \
            for (size_t i = 0; i < m; i++)                                                                           \
                NAME##_block1xN(a + i * lda, b + n4 * ldb, ldb, n - n4, k, c + i * ldc + n4, alpha, accumulate,     \
                                NULL);                                                                               \
    }

DEFINE_DOT_ROWS(ck_dot_rows, float, load16_f32, scalar_f32)
DEFINE_DOT_ROWS(ck_dot_rows_bf16, unsigned short, load16_bf16, scalar_bf16)

/// Attention's probabilities times values, for R query rows and E vectors of 16 value columns at once: each element
/// still sums j = 0, 1, ... in order from zero (so a row's result does not depend on the rows beside it), but R x E
/// independent sums are in flight instead of one chain of dependent multiply-adds (BENCHMARKS.md, "Attention").
#define DEFINE_WEIGHTED_BLOCK(R, E)                                                                                  \
    static inline void weighted_block_##R##x##E(const float *p, size_t ldp, const float *v, size_t ldv, size_t t,   \
                                                float *out, size_t ldo) {                                            \
        v16 acc[R][E];                                                                                               \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < E; c++) acc[r][c] = (v16){0};                                                        \
        for (size_t j = 0; j < t; j++) {                                                                             \
            v16 vv[E];                                                                                               \
            for (int c = 0; c < E; c++) vv[c] = load16(v + j * ldv + 16 * c);                                        \
            for (int r = 0; r < R; r++) {                                                                            \
                v16 pr = (v16){0} + p[r * ldp + j];                                                                  \
                for (int c = 0; c < E; c++) acc[r][c] = fma16(pr, vv[c], acc[r][c]);                                 \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int c = 0; c < E; c++) store16(out + r * ldo + 16 * c, acc[r][c]);                                  \
    }

DEFINE_WEIGHTED_BLOCK(4, 4)
DEFINE_WEIGHTED_BLOCK(4, 1)
DEFINE_WEIGHTED_BLOCK(1, 4)
DEFINE_WEIGHTED_BLOCK(1, 1)

void ck_weighted_rows(const float *p, size_t ldp, size_t m, const float *v, size_t ldv, size_t t, size_t d, float *out,
                      size_t ldo) {
    size_t d16 = d & ~(size_t)15, i = 0;
    for (; i + 4 <= m; i += 4) {
        size_t e = 0;
        for (; e + 64 <= d16; e += 64) weighted_block_4x4(p + i * ldp, ldp, v + e, ldv, t, out + i * ldo + e, ldo);
        for (; e < d16; e += 16) weighted_block_4x1(p + i * ldp, ldp, v + e, ldv, t, out + i * ldo + e, ldo);
    }
    for (; i < m; i++) {
        size_t e = 0;
        for (; e + 64 <= d16; e += 64) weighted_block_1x4(p + i * ldp, ldp, v + e, ldv, t, out + i * ldo + e, ldo);
        for (; e < d16; e += 16) weighted_block_1x1(p + i * ldp, ldp, v + e, ldv, t, out + i * ldo + e, ldo);
    }
    for (size_t r = 0; r < m; r++)
        for (size_t e = d16; e < d; e++) {
            float acc = 0;
            for (size_t j = 0; j < t; j++) acc = fmaf(p[r * ldp + j], v[j * ldv + e], acc);
            out[r * ldo + e] = acc;
        }
}

float ck_stream_sum(const float *p, size_t n) {
    v16 acc[4] = {{0}, {0}, {0}, {0}};
    size_t n64 = n & ~(size_t)63;
    for (size_t i = 0; i < n64; i += 64)
        for (int j = 0; j < 4; j++) acc[j] += load16(p + i + 16 * j);
    float tail = 0;
    for (size_t i = n64; i < n; i++) tail += p[i];
    return reduce16(acc[0] + acc[1] + acc[2] + acc[3]) + tail;
}
