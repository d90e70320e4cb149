// The 8-bit product in plain C (see q8_tiles.h and ck_linear_q8 in CKernels.h): the compiler vectorizes the integer
// sums for the target (NEON on ARM); fmaf is the fused multiply-add, libm's on x86 without FMA.
#include "CKernels.h"

#include <math.h>
#include <string.h>

#define CK_FN(name) name##_portable
#define Q8_TILE_R 2
#define Q8_TILE_P 1
#define Q8_DECODE_P 2

#define Q8_TILE(NAME, R, P)                                                                                           \
    static void NAME(Q8_TILE_ARGS) {                                                                                 \
        float acc[R][16 * P];                                                                                        \
        memset(acc, 0, sizeof acc);                                                                                  \
        for (size_t blk = 0; blk < blocks; blk++) {                                                                  \
            const unsigned char *block = b + blk * CK_Q8_BLOCK_BYTES;                                                \
            int sum[R][16 * P];                                                                                      \
            memset(sum, 0, sizeof sum);                                                                              \
            for (int g = 0; g < CK_Q8_BLOCK / 4; g++)                                                                \
                for (int r = 0; r < R; r++) {                                                                        \
                    const signed char *x = xq + (r * blocks + blk) * CK_Q8_BLOCK + g * 4;                            \
                    for (int q = 0; q < P; q++) {                                                                    \
                        const signed char *w = (const signed char *)(block + q * ps + Q8_VALUES(g));                 \
                        for (int l = 0; l < 16; l++)                                                                 \
                            sum[r][16 * q + l] += x[0] * w[4 * l] + x[1] * w[4 * l + 1] + x[2] * w[4 * l + 2] +      \
                                                  x[3] * w[4 * l + 3];                                               \
                    }                                                                                                \
                }                                                                                                    \
            for (int q = 0; q < P; q++)                                                                              \
                for (int l = 0; l < 16; l++) {                                                                       \
                    _Float16 half;                                                                                   \
                    memcpy(&half, block + q * ps + 2 * l, 2);                                                        \
                    float scale = (float)half;                                                                       \
                    for (int r = 0; r < R; r++) {                                                                    \
                        float both = xd[r * blocks + blk] * scale;                                                   \
                        acc[r][16 * q + l] = fmaf((float)sum[r][16 * q + l], both, acc[r][16 * q + l]);              \
                    }                                                                                                \
                }                                                                                                    \
        }                                                                                                            \
        (void)xs;                                                                                                    \
        for (int r = 0; r < R; r++) q8_store(c + r * ldc, acc[r], 16 * P, cols, alpha, accumulate);                  \
    }

#include "q8_tiles.h"
