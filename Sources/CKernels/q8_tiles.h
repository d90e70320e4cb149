// The 8-bit product's loops over rows and panels, compiled once per path (q8_avx512.c, q8_avx2.c, q8_portable.c).
// The including file defines:
//   CK_FN(name)        the path's name for a kernel
//   Q8_TILE(NAME, R, P) a register tile of R rows and P panels (signature Q8_TILE_ARGS), computing each output as
//                      ck_linear_q8 documents and storing it with q8_store
//   Q8_TILE_R, Q8_TILE_P  the largest tile for many rows (Q8_TILE_P divides CK_GROUP / CK_PANEL)
//   Q8_DECODE_P        panels of the tile for a single row

#include <stddef.h>

#pragma STDC FP_CONTRACT OFF

/// A tile's inputs: its rows' quantized activations (row stride blocks · 32 values, blocks scales and sums), its
/// first panel (of stride ps bytes) and the first output it writes, of which `cols` exist.
#define Q8_TILE_ARGS                                                                                                 \
    const signed char *xq, const float *xd, const int *xs, size_t blocks, const unsigned char *b, size_t ps,         \
        float *c, size_t ldc, size_t cols, float alpha, int accumulate

/// Offsets within a q8 block: the 16 scales, then group g's [16][4] values.
#define Q8_VALUES(g) (CK_PANEL * 2 + (g) * CK_PANEL * 4)

/// Stores a tile row's chains: value = acc · alpha, then c + value or value; only the first `cols` outputs exist.
static inline void q8_store(float *c, const float *acc, size_t count, size_t cols, float alpha, int accumulate) {
    for (size_t j = 0; j < count && j < cols; j++) {
        float value = acc[j] * alpha;
        c[j] = accumulate ? c[j] + value : value;
    }
}

// Tiles for every row count up to 6, as path_body.h has them: the row tails of a Q8_TILE_R-row tile (at most 6) run
// on the tile of their height.
_Static_assert(Q8_TILE_R >= 1 && Q8_TILE_R <= 6, "the switch below names tiles of up to 6 rows");
Q8_TILE(q8_tile_1, 1, Q8_TILE_P)
Q8_TILE(q8_tile_2, 2, Q8_TILE_P)
Q8_TILE(q8_tile_3, 3, Q8_TILE_P)
Q8_TILE(q8_tile_4, 4, Q8_TILE_P)
Q8_TILE(q8_tile_5, 5, Q8_TILE_P)
Q8_TILE(q8_tile_6, 6, Q8_TILE_P)
Q8_TILE(q8_tile_decode, 1, Q8_DECODE_P)

static void q8_tile_rows(size_t rows, Q8_TILE_ARGS) {
    void (*const tiles[])(Q8_TILE_ARGS) = {q8_tile_1, q8_tile_2, q8_tile_3, q8_tile_4, q8_tile_5, q8_tile_6};
    tiles[rows - 1](xq, xd, xs, blocks, b, ps, c, ldc, cols, alpha, accumulate);
}

void CK_FN(ck_linear_q8)(const signed char *xq, const float *xd, const int *xs, size_t m, const void *panels,
                         size_t k, size_t n, float *c, size_t ldc, float alpha, int accumulate) {
    size_t blocks = (k + CK_Q8_BLOCK - 1) / CK_Q8_BLOCK, ps = blocks * CK_Q8_BLOCK_BYTES;
    size_t count = (n + CK_PANEL - 1) / CK_PANEL, q = 0;
    const unsigned char *b = panels;
    if (m == 1)
        for (; q + Q8_DECODE_P <= count; q += Q8_DECODE_P)
            q8_tile_decode(xq, xd, xs, blocks, b + q * ps, ps, c + q * CK_PANEL, ldc, n - q * CK_PANEL, alpha,
                           accumulate);
    // Panels come in groups of CK_GROUP outputs, a multiple of Q8_TILE_P panels: there is no panel tail.
    for (; q < count; q += Q8_TILE_P)
        for (size_t i = 0; i < m; i += Q8_TILE_R) {
            size_t rows = m - i < Q8_TILE_R ? m - i : Q8_TILE_R;
            q8_tile_rows(rows, xq + i * blocks * CK_Q8_BLOCK, xd + i * blocks, xs + i * blocks, blocks, b + q * ps,
                         ps, c + i * ldc + q * CK_PANEL, ldc, n - q * CK_PANEL, alpha, accumulate);
        }
}
