#!/usr/bin/env bash
# The kernels give the same bits on ARM64 as on x86-64: builds ops/arm/kernels_digest.c with CKernels' sources and
# flags natively and for ARM64 (clang's cross target, Debian's arm64 C library), runs the native one on every path
# this CPU has and the ARM64 one (the portable path, NEON there) under qemu-aarch64, and compares the digests. Then
# the native one under qemu-x86_64 as a Haswell (AVX2 and FMA, no AVX-512) and a Nehalem (neither: the portable path
# with libm's fmaf) must choose those paths by themselves and give the same digests.
# Needs qemu-user, libc6-dev-arm64-cross and libgcc-12-dev-arm64-cross (ops/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-O3 -ffp-contract=off -I Sources/CKernels/include)
sources=(ops/arm/kernels_digest.c Sources/CKernels/*.c)
clang "${flags[@]}" "${sources[@]}" -o "$work/native" -lm
gcc=$(dirname "$(ls /usr/lib/gcc-cross/aarch64-linux-gnu/*/crtbeginT.o | tail -1)")
clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu -B"$gcc" -L"$gcc" -fuse-ld=lld -static \
  "${flags[@]}" "${sources[@]}" -o "$work/arm64" -lm
qemu-aarch64 "$work/arm64" 0 > "$work/arm64-portable.txt"
status=0
for path in 0 1 2; do
  name=(portable avx2 avx512)
  if "$work/native" "$path" > "$work/native-$path.txt" 2> /dev/null; then
    if diff -u "$work/arm64-portable.txt" "$work/native-$path.txt"; then
      echo "x86-64 ${name[$path]}: the same bits as ARM64 portable (NEON) on $(wc -l < "$work/native-$path.txt") products"
    else
      echo "x86-64 ${name[$path]} differs from ARM64 portable (NEON)" >&2
      status=1
    fi
  fi
done
for cpu in Haswell:avx2 Nehalem:portable; do
  qemu-x86_64 -cpu "${cpu%%:*}" "$work/native" > "$work/${cpu%%:*}.txt" 2> "$work/${cpu%%:*}.err"
  if ! grep -q "best path: ${cpu##*:}\$" "$work/${cpu%%:*}.err"; then
    echo "an emulated ${cpu%%:*} did not choose the ${cpu##*:} path: $(grep 'best path' "$work/${cpu%%:*}.err")" >&2
    status=1
  elif diff -u "$work/arm64-portable.txt" "$work/${cpu%%:*}.txt"; then
    echo "emulated ${cpu%%:*} (chose ${cpu##*:}): the same bits"
  else
    echo "emulated ${cpu%%:*} differs from ARM64 portable (NEON)" >&2
    status=1
  fi
done
exit $status
