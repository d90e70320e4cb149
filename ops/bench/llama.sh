#!/usr/bin/env bash
# The engine beside llama.cpp on the same weights and threads. Builds llama.cpp (llama-bench and llama-quantize) from
# the PyPI source package llama-cpp-python 0.3.36, converts the bench model to GGUF with ops/bench/gguf_from_checkpoint.py
# (no PyTorch needed) and quantizes it to Q8_0 with llama.cpp's own tool, then runs `orthus bench` with --llama-bench
# twice: bf16 against bf16, and `orthus quantize`'s 8-bit copy against Q8_0.
#   ops/bench/llama.sh [WORK_DIR] [orthus bench options, e.g. --quick or --threads 1]
# AVX2_ONLY=1 builds llama.cpp for AVX2 + FMA alone (no AVX-512, no bf16 dot products) and runs the engine on its
# AVX2 path: an AVX2-only machine's comparison, on any x86-64 host.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-out/llama}
shift || true
version=0.3.36
mkdir -p "$work"
llama=$work/llama.cpp
flags=(-DGGML_NATIVE=ON)
build=build
if [ "${AVX2_ONLY:-0}" = 1 ]; then
  flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF
    -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF)
  build=build-avx2
  export ORTHUS_KERNELS=avx2
fi
if [ ! -x "$llama/$build/bin/llama-bench" ] || [ ! -x "$llama/$build/bin/llama-quantize" ]; then
  if [ ! -d "$llama" ]; then
    pip install cmake scikit-build-core numpy
    # --no-build-isolation: the package's metadata is read with the scikit-build-core just installed, in seconds.
    pip download --no-deps --no-binary :all: --no-build-isolation "llama-cpp-python==$version" -d "$work"
    tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
    mv "$work/llama_cpp_python-$version/vendor/llama.cpp" "$llama"
  fi
  cmake -S "$llama" -B "$llama/$build" -DCMAKE_BUILD_TYPE=Release "${flags[@]}" -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  cmake --build "$llama/$build" --target llama-bench llama-quantize -j "$(nproc)"
fi
swift build -c release --product orthus
orthus=.build/release/orthus
"$orthus" bench --generate-only --model-dir out/bench-model "$@"
python3 ops/bench/gguf_from_checkpoint.py out/bench-model "$work/bench-bf16.gguf" --gguf-py "$llama/gguf-py"
"$llama/$build/bin/llama-quantize" "$work/bench-bf16.gguf" "$work/bench-q8_0.gguf" Q8_0 > "$work/quantize.log" 2>&1
"$orthus" bench --llama-only --model-dir out/bench-model \
  --llama-bench "$llama/$build/bin/llama-bench" --gguf "$work/bench-bf16.gguf" --json "$work/bench-bf16.json" "$@"
"$orthus" bench --llama-only --dtype Q8 --model-dir out/bench-model-q8 \
  --llama-bench "$llama/$build/bin/llama-bench" --gguf "$work/bench-q8_0.gguf" --json "$work/bench-q8.json" "$@"
