// The kernels for the AVX2 path (see path_body.h), built for that instruction set whatever the compiler's target;
// path.c calls them only on a CPU that has it.
#if defined(__x86_64__)
#include "CKernels.h"

#define CK_CAT_(a, b) a##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define CK_FN(name) CK_CAT(name, _avx2)
#define VW 8
#define TILE_R 6
#define TILE_P 1
// Static helpers pass 16-float vectors between themselves (always inlined): no ABI is crossed.
#pragma clang diagnostic ignored "-Wpsabi"
#define DECODE_P 4

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#include "path_body.h"
#pragma clang attribute pop
#endif
