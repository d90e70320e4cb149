// Prints a digest of every CKernels product on shapes that hit each tile and tail, for one instruction-set path (the
// argument) or the best this CPU has: ops/arm/check-kernels.sh runs it on each path of this x86-64 CPU, built for
// ARM64 (NEON) under qemu-aarch64, and under qemu-x86_64 as CPUs without AVX-512 or without AVX, and compares the
// digests. Same bits everywhere is the kernels' contract (CKernels.h).
#include "CKernels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static uint32_t next_bits(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(state >> 33);
}

/// Uniform in [-1, 1) with 2^-20 steps, the same on every host.
static float next_float(void) { return (float)((int32_t)(next_bits() % 2097152) - 1048576) / 1048576.0f; }

static float *floats(size_t count) {
    float *values = malloc(count * sizeof(float) + 1);
    for (size_t i = 0; i < count; i++) values[i] = next_float();
    return values;
}

/// FNV-1a over the bytes of the outputs.
static uint64_t digest(const void *bytes, size_t count) {
    uint64_t hash = 14695981039346656037ULL;
    for (size_t i = 0; i < count; i++) hash = (hash ^ ((const unsigned char *)bytes)[i]) * 1099511628211ULL;
    return hash;
}

static size_t padded(size_t n) { return (n + CK_GROUP - 1) / CK_GROUP * CK_GROUP; }

static void linear(int path, size_t m, size_t k, size_t n) {
    float *a = floats(m * k), *w = floats(n * k), *start = floats(m * n), *c = malloc(m * n * sizeof(float));
    size_t panels = padded(n) / CK_PANEL;
    // float32, bf16 (the high halves of the same values) and f16 (their rounding), packed as the engine packs them.
    static const char *names[] = {"f32", "bf16", "f16"};
    for (int type = CK_WEIGHTS_F32; type <= CK_WEIGHTS_F16; type++) {
        size_t bytes = type == CK_WEIGHTS_F32 ? 4 : 2;
        unsigned char *packed = calloc(panels * CK_PANEL * k * bytes + 1, 1);
        for (size_t j = 0; j < n; j++) {
            unsigned short halves[4096];
            const void *row = w + j * k;
            if (bytes == 2) {
                for (size_t p = 0; p < k; p++) {
                    uint32_t u;
                    memcpy(&u, &w[j * k + p], 4);
                    _Float16 h = (_Float16)w[j * k + p];
                    if (type == CK_WEIGHTS_BF16) halves[p] = (unsigned short)(u >> 16);
                    else memcpy(&halves[p], &h, 2);
                }
                row = halves;
            }
            ck_pack_row(row, k, bytes, packed + (j / CK_PANEL) * CK_PANEL * k * bytes, j % CK_PANEL);
        }
        memcpy(c, start, m * n * sizeof(float));
        ck_linear(path, type, a, k, m, packed, k, n, c, n, 0.5f, 1);
        printf("linear %s %zux%zux%zu %016llx\n", names[type], m, k, n,
               (unsigned long long)digest(c, m * n * sizeof(float)));
        free(packed);
    }
    // 8 bits: values in -127...127 and f16 scales between 2^-9 and 2^-7.
    size_t blocks = (k + CK_Q8_BLOCK - 1) / CK_Q8_BLOCK, ps = blocks * CK_Q8_BLOCK_BYTES;
    unsigned char *packed = calloc(panels * ps + 1, 1);
    for (size_t j = 0; j < n; j++) {
        signed char values[4096];
        unsigned short scales[128];
        for (size_t p = 0; p < k; p++) values[p] = (signed char)((int)(next_bits() % 255) - 127);
        for (size_t b = 0; b < blocks; b++) scales[b] = (unsigned short)(0x1800 + next_bits() % 0x800);
        ck_pack_row_q8(values, scales, k, packed + (j / CK_PANEL) * ps, j % CK_PANEL);
    }
    signed char *xq = malloc(m * blocks * CK_Q8_BLOCK);
    float *xd = malloc(m * blocks * sizeof(float));
    int *xs = malloc(m * blocks * sizeof(int));
    ck_q8_quantize_rows(a, k, m, k, xq, xd, xs);
    memcpy(c, start, m * n * sizeof(float));
    ck_linear_q8(path, xq, xd, xs, m, packed, k, n, c, n, 0.5f, 1);
    printf("linear q8 %zux%zux%zu %016llx (activations %016llx)\n", m, k, n,
           (unsigned long long)digest(c, m * n * sizeof(float)),
           (unsigned long long)(digest(xq, m * blocks * CK_Q8_BLOCK) ^ digest(xd, m * blocks * sizeof(float))));
    free(packed), free(xq), free(xd), free(xs), free(a), free(w), free(start), free(c);
}

static void unpacked(int path, size_t m, size_t n, size_t k) {
    float *a = floats(m * k), *b = floats(n * k), *c = floats(m * n), *out = malloc(m * 37 * sizeof(float));
    ck_dot_rows(path, a, k, m, b, k, n, k, c, n, 0.5f, 1);
    ck_weighted_rows(path, a, k, m, b, 37, k < n ? k : n, 37, out, 37);
    printf("dot_rows %zux%zux%zu %016llx weighted_rows %016llx\n", m, n, k,
           (unsigned long long)digest(c, m * n * sizeof(float)), (unsigned long long)digest(out, m * 37 * 4));
    free(a), free(b), free(c), free(out);
}

int main(int argc, char **argv) {
    // No argument: the path this CPU would be given (its name on standard error).
    int path = argc > 1 ? atoi(argv[1]) : ck_path_best();
    if (argc <= 1) fprintf(stderr, "best path: %s\n", (const char *[]){"portable", "avx2", "avx512"}[path]);
    if (!ck_path_available(path)) {
        fprintf(stderr, "path %d is not available on this CPU\n", path);
        return 2;
    }
    state = 42;
    static const size_t shapes[][3] = {{1, 37, 200}, {1, 256, 64},  {1, 2048, 320}, {2, 19, 17},  {5, 64, 130},
                                       {6, 7, 64},   {7, 100, 65},  {13, 33, 250},  {17, 600, 70}, {64, 300, 128}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) linear(path, shapes[s][0], shapes[s][1], shapes[s][2]);
    unpacked(path, 9, 21, 150);
    unpacked(path, 4, 64, 77);
    return 0;
}
