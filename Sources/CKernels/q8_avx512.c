// The 8-bit product on AVX-512 with VNNI (see q8_tiles.h and ck_linear_q8 in CKernels.h), built for that
// instruction set whatever the compiler's target; q8.c calls it only on a CPU that has it.
#if defined(__x86_64__)
#include "CKernels.h"

#include <immintrin.h>
#include <string.h>

#define CK_FN(name) name##_avx512
#define Q8_TILE_R 6
#define Q8_TILE_P 2
#define Q8_DECODE_P 4

/// vpdpbusd adds four products of unsigned and signed bytes into each 32-bit lane. The weights are made unsigned
/// by flipping their top bit (w + 128), and the block's sum starts at -128 · (the sum of the activation values), so
/// it ends as Σ x·w exactly, for every w (-128 included).
#define Q8_TILE(NAME, R, P)                                                                                           \
    static void NAME(Q8_TILE_ARGS) {                                                                                 \
        __m512 acc[R][P];                                                                                            \
        for (int r = 0; r < R; r++)                                                                                  \
            for (int q = 0; q < P; q++) acc[r][q] = _mm512_setzero_ps();                                             \
        const __m512i flip = _mm512_set1_epi8((char)0x80);                                                           \
        for (size_t blk = 0; blk < blocks; blk++) {                                                                  \
            const unsigned char *block = b + blk * CK_Q8_BLOCK_BYTES;                                                \
            __m512i sum[R][P];                                                                                       \
            for (int r = 0; r < R; r++)                                                                              \
                for (int q = 0; q < P; q++) sum[r][q] = _mm512_set1_epi32(-128 * xs[r * blocks + blk]);              \
            for (int g = 0; g < CK_Q8_BLOCK / 4; g++) {                                                              \
                __m512i w[P];                                                                                        \
                for (int q = 0; q < P; q++)                                                                          \
                    w[q] = _mm512_xor_si512(_mm512_loadu_si512(block + q * ps + Q8_VALUES(g)), flip);                \
                for (int r = 0; r < R; r++) {                                                                        \
                    int four;                                                                                        \
                    memcpy(&four, xq + (r * blocks + blk) * CK_Q8_BLOCK + g * 4, 4);                                 \
                    __m512i xb = _mm512_set1_epi32(four);                                                            \
                    for (int q = 0; q < P; q++) sum[r][q] = _mm512_dpbusd_epi32(sum[r][q], w[q], xb);                \
                }                                                                                                    \
            }                                                                                                        \
            for (int q = 0; q < P; q++) {                                                                            \
                __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(block + q * ps)));               \
                for (int r = 0; r < R; r++) {                                                                        \
                    __m512 both = _mm512_mul_ps(_mm512_set1_ps(xd[r * blocks + blk]), scale);                        \
                    acc[r][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][q]), both, acc[r][q]);                     \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
        for (int r = 0; r < R; r++) {                                                                                \
            float out[16 * P];                                                                                       \
            for (int q = 0; q < P; q++) _mm512_storeu_ps(out + 16 * q, acc[r][q]);                                   \
            q8_store(c + r * ldc, out, 16 * P, cols, alpha, accumulate);                                             \
        }                                                                                                            \
    }

#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)
#include "q8_tiles.h"
#pragma clang attribute pop
#endif
