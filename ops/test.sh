#!/usr/bin/env bash
# Everything CI checks: system packages, generated protobuf code up to date, formatting, the test suite, the release
# build the container image is made of (ops/build-release.sh: it also checks the image's runtime packages), and a
# short fuzzing run of every decoder of untrusted bytes (ops/fuzz.sh; 10 s each here, 10^6 executions each by hand),
# and the kernels built for ARM64 and run under qemu against every x86-64 path (ops/arm/check-kernels.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
ops/gen-protos.sh --check
swift format lint --strict --recursive Sources Tests Package.swift ops/fuzz/Package.swift ops/fuzz/Sources
swift test
release=$(mktemp -d)
trap 'rm -rf "$release"' EXIT
bash ops/build-release.sh "$release"
bash ops/fuzz.sh --time 10
bash ops/arm/check-kernels.sh
