// 8-bit products: packing, the activations' quantization, and choosing a kernel (q8_avx512.c, q8_avx2.c,
// q8_portable.c). The arithmetic all of them share is written out in CKernels.h.
#include "CKernels.h"

#include <math.h>
#include <string.h>

// No fused multiply-adds beyond those written out: the quantization must round the same on every host.
#pragma STDC FP_CONTRACT OFF

/// Offset of input p's value (within its block) for `lane` in a q8 block: groups of four inputs, each [16][4].
static size_t value_offset(size_t p, size_t lane) {
    return CK_PANEL * 2 + (p / 4) * CK_PANEL * 4 + lane * 4 + p % 4;
}

int ck_pack_row_q8(const signed char *values, const unsigned short *scales, size_t k, void *panel, size_t lane) {
    unsigned char *to = panel;
    int valid = 1;
    for (size_t b = 0; b * CK_Q8_BLOCK < k; b++) {
        unsigned char *block = to + b * CK_Q8_BLOCK_BYTES;
        memcpy(block + lane * 2, &scales[b], 2);
        for (size_t p = 0; p < CK_Q8_BLOCK && b * CK_Q8_BLOCK + p < k; p++) {
            signed char value = values[b * CK_Q8_BLOCK + p];
            valid &= value != -128;
            block[value_offset(p, lane)] = (unsigned char)value;
        }
    }
    return valid ? 0 : -1;
}

void ck_unpack_row_q8(const void *panel, size_t k, size_t lane, signed char *values, unsigned short *scales) {
    const unsigned char *from = panel;
    for (size_t b = 0; b * CK_Q8_BLOCK < k; b++) {
        const unsigned char *block = from + b * CK_Q8_BLOCK_BYTES;
        memcpy(&scales[b], block + lane * 2, 2);
        for (size_t p = 0; p < CK_Q8_BLOCK && b * CK_Q8_BLOCK + p < k; p++)
            values[b * CK_Q8_BLOCK + p] = (signed char)block[value_offset(p, lane)];
    }
}

/// roundf (to nearest, ties away from zero) of a value within about ±127, clamped to ±127, and 0 for a NaN. Written
/// out without branches or a libm call (x86-64's baseline has no rounding instruction), so the compiler vectorizes
/// it: prefill quantizes every product's input, and a branch on each value's fraction mispredicted half the time
/// (prefill measured 10% slower with it).
static inline int round_to_q8(float scaled) {
    float bounded = scaled > 127.0f ? 127.0f : scaled < -127.0f ? -127.0f : scaled;
    bounded = bounded == bounded ? bounded : 0.0f;
    int whole = (int)bounded;                 // toward zero, exact
    float fraction = bounded - (float)whole;  // exact: the two share their leading bits
    return whole + (fraction >= 0.5f) - (fraction <= -0.5f);
}

void ck_q8_quantize_rows(const float *a, size_t lda, size_t m, size_t k, signed char *values, float *scales,
                         int *sums) {
    size_t blocks = (k + CK_Q8_BLOCK - 1) / CK_Q8_BLOCK;
    for (size_t i = 0; i < m; i++) {
        const float *row = a + i * lda;
        for (size_t b = 0; b < blocks; b++) {
            size_t first = b * CK_Q8_BLOCK, count = k - first < CK_Q8_BLOCK ? k - first : CK_Q8_BLOCK;
            // A NaN becomes the largest and stays so, so it reaches the scale and every output of the row (as it
            // would through float32 arithmetic) instead of vanishing into a finite value.
            float largest = 0;
            for (size_t p = 0; p < count && largest == largest; p++) {
                float magnitude = fabsf(row[first + p]);
                if (!(magnitude <= largest)) largest = magnitude;
            }
            float d = largest / 127.0f;
            float inverse = d != 0 ? 1.0f / d : 0;
            if (isinf(inverse)) inverse = 0;  // a block of subnormals: its products are below any output's ulp
            signed char *out = values + (i * blocks + b) * CK_Q8_BLOCK;
            int sum = 0;
            for (size_t p = 0; p < CK_Q8_BLOCK; p++) {
                float scaled = p < count ? row[first + p] * inverse : 0;
                out[p] = (signed char)round_to_q8(scaled);
                sum += out[p];
            }
            scales[i * blocks + b] = d;
            sums[i * blocks + b] = sum;
        }
    }
}

#define DECLARE_Q8(SUFFIX)                                                                                           \
    void ck_linear_q8_##SUFFIX(const signed char *, const float *, const int *, size_t, const void *, size_t,        \
                               size_t, float *, size_t, float, int);

DECLARE_Q8(portable)
#if defined(__x86_64__)
DECLARE_Q8(avx2)
DECLARE_Q8(avx512)

/// The AVX-512 kernel multiplies bytes with VNNI (AVX512_VNNI: Ice Lake, Zen 4 and later); an AVX-512 CPU without
/// it runs the AVX2 kernel, which gives the same integers.
static int has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
}
#endif

void ck_linear_q8(int path, const signed char *values, const float *scales, const int *sums, size_t m,
                  const void *panels, size_t k, size_t n, float *c, size_t ldc, float alpha, int accumulate) {
    if (m == 0 || n == 0) return;
#if defined(__x86_64__)
    if (path == CK_PATH_AVX512 && has_vnni()) {
        ck_linear_q8_avx512(values, scales, sums, m, panels, k, n, c, ldc, alpha, accumulate);
        return;
    }
    if (path == CK_PATH_AVX512 || path == CK_PATH_AVX2) {
        ck_linear_q8_avx2(values, scales, sums, m, panels, k, n, c, ldc, alpha, accumulate);
        return;
    }
#endif
    ck_linear_q8_portable(values, scales, sums, m, panels, k, n, c, ldc, alpha, accumulate);
}
