// The kernels' body, compiled once per path (path_avx512.c, path_avx2.c, path_portable.c) under that path's target
// attribute. The including file defines:
//   CK_FN(name)  the path's name for a kernel
//   VW           floats per hardware vector (16, 8, 4)
//   TILE_R       rows of a register tile            TILE_P    panels of a register tile
//   DECODE_P     panels of a tile for a single row
// The arithmetic of each output element is written out below once and does not depend on any of these.

#include <math.h>
#include <string.h>

#define NV (CK_PANEL / VW)  // vectors per panel row

typedef float vf __attribute__((vector_size(VW * 4)));
typedef unsigned short hv __attribute__((vector_size(VW * 2)));
typedef unsigned int uv __attribute__((vector_size(VW * 4)));

static inline vf splat(float s) {
    vf v;
    for (int i = 0; i < VW; i++) v[i] = s;
    return v;
}

static inline vf load_vf(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);  // rows need not be aligned
    return v;
}

static inline void store_vf(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline vf fma_vf(vf a, vf b, vf c) { return __builtin_elementwise_fma(a, b, c); }

/// Vector v (of NV) of row p of a packed panel.
static inline vf panel_f32(const float *panel, size_t p, int v) { return load_vf(panel + p * CK_PANEL + v * VW); }

typedef _Float16 h16v __attribute__((vector_size(VW * 2)));

/// f16 widens exactly (F16C's vcvtph2ps on x86, fcvtl on ARM, a library routine where neither exists).
static inline vf panel_f16(const unsigned short *panel, size_t p, int v) {
    h16v h;
    memcpy(&h, panel + p * CK_PANEL + v * VW, sizeof h);
    return __builtin_convertvector(h, vf);
}

static inline vf panel_bf16(const unsigned short *panel, size_t p, int v) {
    hv h;
    memcpy(&h, panel + p * CK_PANEL + v * VW, sizeof h);
    uv w = __builtin_convertvector(h, uv) << 16;
    vf x;
    memcpy(&x, &w, sizeof x);
    return x;
}

/// Stores a tile row's sums: value = sum · alpha, then c + value or value; only the first `cols` columns exist.
static inline void store_sums(float *c, const vf *sums, int vectors, size_t cols, float alpha, int accumulate) {
    for (int x = 0; x < vectors; x++) {
        size_t first = (size_t)x * VW;
        if (first >= cols) return;
        vf value = sums[x] * splat(alpha);
        if (first + VW <= cols) {
            store_vf(c + first, accumulate ? load_vf(c + first) + value : value);
        } else {
            for (size_t l = 0; first + l < cols; l++) c[first + l] = accumulate ? c[first + l] + value[l] : value[l];
        }
    }
}

/// An R x P register tile: R activation rows against P panels (16P outputs), each output one chain of fused
/// multiply-adds over p in order. `ps` is the panel stride in elements.
#define DEFINE_TILE(NAME, BTYPE, LOAD, R, P)                                                                          \
    static void NAME(const float *a, size_t lda, const BTYPE *b, size_t ps, size_t k, float *c, size_t ldc,          \
                     size_t cols, float alpha, int accumulate) {                                                     \
        vf acc[R][P * NV];                                                                                           \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int x = 0; x < P * NV; x++) acc[r][x] = splat(0);                                                   \
        for (size_t p = 0; p < k; p++) {                                                                             \
            vf bv[P * NV];                                                                                           \
            for (int q = 0; q < P; q++)                                                                              \
                for (int v = 0; v < NV; v++) bv[q * NV + v] = LOAD(b + q * ps, p, v);                                 \
            for (int r = 0; r < R; r++) {                                                                            \
                vf av = splat(a[r * lda + p]);                                                                       \
                for (int x = 0; x < P * NV; x++) acc[r][x] = fma_vf(av, bv[x], acc[r][x]);                           \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++) store_sums(c + r * ldc, acc[r], P * NV, cols, alpha, accumulate);              \
    }

/// Tiles for every row count up to TR (row tails; the switch names tiles up to 6 rows) at TP panels, and the
/// single-row tile at DP panels; a panel is k · CK_PANEL elements of BTYPE.
#define DEFINE_TILES(TAG, BTYPE, LOAD, TR, TP, DP)                                                  \
    DEFINE_TILE(tile_##TAG##_1, BTYPE, LOAD, 1, TP)                                                                      \
    DEFINE_TILE(tile_##TAG##_2, BTYPE, LOAD, 2, TP)                                                                      \
    DEFINE_TILE(tile_##TAG##_3, BTYPE, LOAD, 3, TP)                                                                      \
    DEFINE_TILE(tile_##TAG##_4, BTYPE, LOAD, 4, TP)                                                                      \
    DEFINE_TILE(tile_##TAG##_5, BTYPE, LOAD, 5, TP)                                                                      \
    DEFINE_TILE(tile_##TAG##_6, BTYPE, LOAD, 6, TP)                                                                      \
    DEFINE_TILE(tile_##TAG##_decode, BTYPE, LOAD, 1, DP)                                                                 \
    static void tile_rows_##TAG(size_t r, const float *a, size_t lda, const BTYPE *b, size_t ps, size_t k, float *c, \
                                size_t ldc, size_t cols, float alpha, int accumulate) {                              \
        switch (r) {                                                                                                 \
        case 1: tile_##TAG##_1(a, lda, b, ps, k, c, ldc, cols, alpha, accumulate); break;                            \
        case 2: tile_##TAG##_2(a, lda, b, ps, k, c, ldc, cols, alpha, accumulate); break;                            \
        case 3: tile_##TAG##_3(a, lda, b, ps, k, c, ldc, cols, alpha, accumulate); break;                            \
        case 4: tile_##TAG##_4(a, lda, b, ps, k, c, ldc, cols, alpha, accumulate); break;                            \
        case 5: tile_##TAG##_5(a, lda, b, ps, k, c, ldc, cols, alpha, accumulate); break;                            \
        default: tile_##TAG##_6(a, lda, b, ps, k, c, ldc, cols, alpha, accumulate); break;                           \
        }                                                                                                            \
    }                                                                                                                \
    static void tiles_##TAG(const float *a, size_t lda, size_t m, const BTYPE *b, size_t k, size_t n, float *c,      \
                            size_t ldc, float alpha, int accumulate) {                                               \
        size_t ps = k * CK_PANEL, panels = (n + CK_PANEL - 1) / CK_PANEL, q = 0;                                        \
        if (m == 1)                                                                                                  \
            for (; q + (DP) <= panels; q += (DP))                                                                    \
                tile_##TAG##_decode(a, lda, b + q * ps, ps, k, c + q * CK_PANEL, ldc, n - q * CK_PANEL, alpha,       \
                                    accumulate);                                                                     \
        /* Panels come in groups of CK_GROUP outputs, a multiple of TP panels: there is no panel tail. */           \
        for (; q < panels; q += (TP))                                                                                \
            for (size_t i = 0; i < m; i += (TR))                                                                     \
                tile_rows_##TAG(m - i < (TR) ? m - i : (TR), a + i * lda, lda, b + q * ps, ps, k,                   \
                                c + i * ldc + q * CK_PANEL, ldc, n - q * CK_PANEL, alpha, accumulate);               \
    }


DEFINE_TILES(f32, float, panel_f32, TILE_R, TILE_P, DECODE_P)
DEFINE_TILES(bf16, unsigned short, panel_bf16, TILE_R, TILE_P, DECODE_P)
DEFINE_TILES(f16, unsigned short, panel_f16, TILE_R, TILE_P, DECODE_P)

void CK_FN(ck_linear)(int weights, const float *a, size_t lda, size_t m, const void *panels, size_t k, size_t n,
                      float *c, size_t ldc, float alpha, int accumulate) {
    if (m == 0 || n == 0) return;
    // Every row count runs the register tiles straight over the packed panels: a group of panels (at most 1.4 MB of
    // bf16 at k = 11008) stays in the L2 while each tile of rows reads it. Blocking over the inputs with the weights
    // widened once and the rows packed, as sgemm does, measured slower here at every size from 16 rows to 512
    // (BENCHMARKS.md, "Kernels per instruction set").
    if (weights == CK_WEIGHTS_F16)
        tiles_f16(a, lda, m, (const unsigned short *)panels, k, n, c, ldc, alpha, accumulate);
    else if (weights == CK_WEIGHTS_BF16)
        tiles_bf16(a, lda, m, (const unsigned short *)panels, k, n, c, ldc, alpha, accumulate);
    else
        tiles_f32(a, lda, m, (const float *)panels, k, n, c, ldc, alpha, accumulate);
}

// Kernels over unpacked operands (attention, the soft image embedding), in 16-float vectors whatever the path: the
// compiler splits them into the path's registers, lane for lane, so the arithmetic is the path-independent one
// CKernels.h describes.

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

static inline v16 load16_f32(const float *row, size_t p, size_t k) {
    (void)k;
    return load16(row + p);
}

static inline v16 splat16(float s) {
    v16 v;
    for (int i = 0; i < 16; i++) v[i] = s;
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
    static void NAME(const float *a, size_t lda, size_t m, const BTYPE *b, size_t ldb, size_t n, size_t k, float *c,       \
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

DEFINE_DOT_ROWS(dot_rows16, float, load16_f32, scalar_f32)

void CK_FN(ck_dot_rows)(const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, size_t k, float *c,
                        size_t ldc, float alpha, int accumulate) {
    dot_rows16(a, lda, m, b, ldb, n, k, c, ldc, alpha, accumulate);
}

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
                v16 pr = splat16(p[r * ldp + j]);                                                                  \
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

void CK_FN(ck_weighted_rows)(const float *p, size_t ldp, size_t m, const float *v, size_t ldv, size_t t, size_t d, float *out,
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

float CK_FN(ck_stream_sum)(const float *p, size_t n) {
    v16 acc[4] = {{0}, {0}, {0}, {0}};
    size_t n64 = n & ~(size_t)63;
    for (size_t i = 0; i < n64; i += 64)
        for (int j = 0; j < 4; j++) acc[j] += load16(p + i + 16 * j);
    float tail = 0;
    for (size_t i = n64; i < n; i++) tail += p[i];
    return reduce16(acc[0] + acc[1] + acc[2] + acc[3]) + tail;
}
