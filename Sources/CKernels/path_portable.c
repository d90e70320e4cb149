// The portable kernels (see path_body.h): generic vectors of four floats, which are NEON registers on ARM. On an
// x86 CPU without FMA the fused multiply-adds become libm's fmaf, correctly rounded and slow: the same results.
#include "CKernels.h"

#define CK_CAT_(a, b) a##b
#define CK_CAT(a, b) CK_CAT_(a, b)
#define CK_FN(name) CK_CAT(name, _portable)
#define VW 4
#define TILE_R 4
#define TILE_P 1
// Static helpers pass 16-float vectors between themselves (always inlined): no ABI is crossed.
#pragma clang diagnostic ignored "-Wpsabi"
#define DECODE_P 2

#include "path_body.h"
