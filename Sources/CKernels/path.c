// Choosing a path at run time, and the packing of weight rows into panels.
#include "CKernels.h"

#include <string.h>

#define DECLARE_PATH(SUFFIX)                                                                                         \
    void ck_linear_##SUFFIX(int, const float *, size_t, size_t, const void *, size_t, size_t, float *, size_t, float, \
                            int);                                                                                    \
    void ck_dot_rows_##SUFFIX(const float *, size_t, size_t, const float *, size_t, size_t, size_t, float *, size_t,  \
                              float, int);                                                                           \
    void ck_weighted_rows_##SUFFIX(const float *, size_t, size_t, const float *, size_t, size_t, size_t, float *,     \
                                   size_t);                                                                          \
    float ck_stream_sum_##SUFFIX(const float *, size_t);

DECLARE_PATH(portable)
#if defined(__x86_64__)
DECLARE_PATH(avx2)
DECLARE_PATH(avx512)
#endif

int ck_path_available(int path) {
    switch (path) {
    case CK_PATH_PORTABLE: return 1;
#if defined(__x86_64__)
    case CK_PATH_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CK_PATH_AVX512:
        __builtin_cpu_init();
        return ck_path_available(CK_PATH_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq");
#endif
    default: return 0;
    }
}

int ck_path_best(void) {
    for (int path = CK_PATH_COUNT - 1; path > CK_PATH_PORTABLE; path--)
        if (ck_path_available(path)) return path;
    return CK_PATH_PORTABLE;
}

// A path the CPU lacks is never run: callers choose among available ones (Tensor's KernelPath), and an unknown
// number falls back to the portable path rather than faulting on an illegal instruction.
#if defined(__x86_64__)
#define DISPATCH(path, name, ...)                                                                                     \
    switch (path) {                                                                                                  \
    case CK_PATH_AVX512: return name##_avx512(__VA_ARGS__);                                                          \
    case CK_PATH_AVX2: return name##_avx2(__VA_ARGS__);                                                              \
    default: return name##_portable(__VA_ARGS__);                                                                    \
    }
#else
#define DISPATCH(path, name, ...) return name##_portable(__VA_ARGS__);
#endif

void ck_linear(int path, int weights, const float *a, size_t lda, size_t m, const void *panels, size_t k, size_t n,
               float *c, size_t ldc, float alpha, int accumulate) {
    DISPATCH(path, ck_linear, weights, a, lda, m, panels, k, n, c, ldc, alpha, accumulate)
}

void ck_dot_rows(int path, const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, size_t k,
                 float *c, size_t ldc, float alpha, int accumulate) {
    DISPATCH(path, ck_dot_rows, a, lda, m, b, ldb, n, k, c, ldc, alpha, accumulate)
}

void ck_weighted_rows(int path, const float *p, size_t ldp, size_t m, const float *v, size_t ldv, size_t t, size_t d,
                      float *out, size_t ldo) {
    DISPATCH(path, ck_weighted_rows, p, ldp, m, v, ldv, t, d, out, ldo)
}

float ck_stream_sum(const float *p, size_t n) {
    static int best = -1;
    if (best < 0) best = ck_path_best();  // idempotent: a race writes the same value
    DISPATCH(best, ck_stream_sum, p, n)
}

// Rows come straight from a memory-mapped checkpoint, where a tensor's data need not be aligned to its element
// size: they are read with memcpy.
void ck_pack_row(const void *row, size_t k, size_t element_bytes, void *panel, size_t lane) {
    const unsigned char *from = row;
    if (element_bytes == 2) {
        unsigned short *to = (unsigned short *)panel + lane;
        for (size_t p = 0; p < k; p++) memcpy(&to[p * CK_PANEL], from + p * 2, 2);
    } else {
        float *to = (float *)panel + lane;
        for (size_t p = 0; p < k; p++) memcpy(&to[p * CK_PANEL], from + p * 4, 4);
    }
}

void ck_unpack_row(const void *panel, size_t k, size_t element_bytes, size_t lane, void *row) {
    if (element_bytes == 2) {
        const unsigned short *from = (const unsigned short *)panel + lane;
        unsigned short *to = row;
        for (size_t p = 0; p < k; p++) to[p] = from[p * CK_PANEL];
    } else {
        const float *from = (const float *)panel + lane;
        float *to = row;
        for (size_t p = 0; p < k; p++) to[p] = from[p * CK_PANEL];
    }
}
