#!/usr/bin/env bash
# Fuzzes every decoder of untrusted bytes with libFuzzer and the address sanitizer (the targets are in
# Sources/FuzzTargets; ops/fuzz/ builds them as libFuzzer executables).
#
#   ops/fuzz.sh                         each target for 10^6 executions
#   ops/fuzz.sh --time 20               each target for 20 seconds (what CI runs)
#   ops/fuzz.sh --runs 5000000 messages one target, longer
#
# Each target starts from its seeds (real messages and files, written by the target itself) and a corpus kept in
# ops/fuzz/.corpus/. A crash stops the run and leaves its input in Tests/FuzzTargetTests/Findings/<target>/, where
# FuzzTargetTests replays it on every test run once the bug is fixed. Prints each target's executions.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=1000000
seconds=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --time) seconds=$2; runs=-1; shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(messages safetensors config tokenizer png journal)

# Swift code instrumented for coverage and checked by the address sanitizer; the C shims and the protobuf-c code too.
flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xcc -fsanitize=fuzzer-no-link,address)
(cd ops/fuzz && swift build "${flags[@]}" 2>&1 | tail -1)
bin=$(cd ops/fuzz && swift build "${flags[@]}" --show-bin-path)

status=0
for target in "${targets[@]}"; do
  corpus=ops/fuzz/.corpus/$target
  seeds=ops/fuzz/.corpus/$target-seeds
  findings=Tests/FuzzTargetTests/Findings/$target
  mkdir -p "$corpus" "$findings"
  rm -rf "$seeds"
  log=$(mktemp)
  limits=(-runs="$runs")
  [ "$seconds" -gt 0 ] && limits=(-max_total_time="$seconds")
  # Inputs up to 64 KiB: room for a message with tensor frames, a small PNG or a cut-down tokenizer.json. Leak
  # detection is off: Foundation's Data(contentsOf:) leaks its buffer for an empty file, once per process, which
  # would stop every file target at its first empty input; the address sanitizer's other checks stay on.
  if ASAN_OPTIONS=detect_leaks=0 ORTHUS_FUZZ_SEEDS="$seeds" ORTHUS_FUZZ_FIXTURES="$root/Tests/Fixtures" \
    "$bin/fuzz-$target" "${limits[@]}" -max_len=65536 -rss_limit_mb=4096 -timeout=10 -detect_leaks=0 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" "$seeds" >"$log" 2>&1; then
    executions=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "$target: $executions executions, no crash ($(grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -1 | sed -E 's/.*(cov: [0-9]+).*/\1/'))"
  else
    status=1
    echo "$target: FAILED, see the input in $findings/ and the log below" >&2
    tail -60 "$log" >&2
  fi
  rm -f "$log"
done
exit $status
