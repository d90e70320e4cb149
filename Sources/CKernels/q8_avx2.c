// The 8-bit product on AVX2 (see q8_tiles.h and ck_linear_q8 in CKernels.h), built for that instruction set
// whatever the compiler's target; q8.c calls it only on a CPU that has it.
#if defined(__x86_64__)
#include "CKernels.h"

#include <immintrin.h>
#include <string.h>

#define CK_FN(name) name##_avx2
#define Q8_TILE_R 4
#define Q8_TILE_P 1
#define Q8_DECODE_P 2

/// pmaddubsw multiplies unsigned by signed bytes, so each product x·w is taken as |w| · (x with w's sign): |w| once
/// per load of weights, shared by the tile's rows. Exact while w is not -128 (ck_pack_row_q8 reports such values) and
/// |x| ≤ 127, and a pair's sum (at most 2·127·127) fits the 16 bits. pmaddwd by ones then adds the pairs into each
/// output's 32-bit sum of its four inputs.
#define Q8_TILE(NAME, R, P)                                                                                           \
    static void NAME(Q8_TILE_ARGS) {                                                                                 \
        (void)xs;                                                                                                    \
        __m256 acc[R][2 * P];                                                                                        \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int x = 0; x < 2 * P; x++) acc[r][x] = _mm256_setzero_ps();                                         \
        const __m256i ones = _mm256_set1_epi16(1);                                                                   \
        for (size_t blk = 0; blk < blocks; blk++) {                                                                  \
            const unsigned char *block = b + blk * CK_Q8_BLOCK_BYTES;                                                \
            __m256i sum[R][2 * P];                                                                                   \
            for (int r = 0; r < R; r++)                                                                              \
                for (int x = 0; x < 2 * P; x++) sum[r][x] = _mm256_setzero_si256();                                  \
            for (int g = 0; g < CK_Q8_BLOCK / 4; g++) {                                                              \
                __m256i w[2 * P], aw[2 * P];                                                                         \
                for (int x = 0; x < 2 * P; x++) {                                                                    \
                    w[x] = _mm256_loadu_si256((const __m256i *)(block + (x / 2) * ps + Q8_VALUES(g) + (x % 2) * 32)); \
                    aw[x] = _mm256_sign_epi8(w[x], w[x]);                                                            \
                }                                                                                                    \
                for (int r = 0; r < R; r++) {                                                                        \
                    int four;                                                                                        \
                    memcpy(&four, xq + (r * blocks + blk) * CK_Q8_BLOCK + g * 4, 4);                                 \
                    __m256i xb = _mm256_set1_epi32(four);                                                            \
                    for (int x = 0; x < 2 * P; x++) {                                                                \
                        __m256i pairs = _mm256_maddubs_epi16(aw[x], _mm256_sign_epi8(xb, w[x]));                     \
                        sum[r][x] = _mm256_add_epi32(sum[r][x], _mm256_madd_epi16(pairs, ones));                     \
                    }                                                                                                \
                }                                                                                                    \
            }                                                                                                        \
            for (int x = 0; x < 2 * P; x++) {                                                                        \
                __m128i bits = _mm_loadu_si128((const __m128i *)(block + (x / 2) * ps + (x % 2) * 16));              \
                __m256 scale = _mm256_cvtph_ps(bits);                                                                \
                for (int r = 0; r < R; r++) {                                                                        \
                    __m256 both = _mm256_mul_ps(_mm256_set1_ps(xd[r * blocks + blk]), scale);                        \
                    acc[r][x] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r][x]), both, acc[r][x]);                     \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++) {                                                                                \
            float out[16 * P];                                                                                       \
            for (int x = 0; x < 2 * P; x++) _mm256_storeu_ps(out + 8 * x, acc[r][x]);                                \
            q8_store(c + r * ldc, out, 16 * P, cols, alpha, accumulate);                                             \
        }                                                                                                            \
    }

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#include "q8_tiles.h"
#pragma clang attribute pop
#endif
