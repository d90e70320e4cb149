#!/usr/bin/env bash
# Times eight 32-token text requests as one `orthus generate --prompts` run against eight separate `generate` runs
# (each of which loads the model), on a model folder (default: out/bench-model, which `orthus bench --quick`
# writes), and checks that each request's text is the same both ways. Prints the two wall times in seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:-out/bench-model}
orthus=.build/release/orthus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in 1 2 3 4 5 6 7 8; do
  echo "{\"prompt\": \"Bench prompt number $i: tell me something.\", \"max_tokens\": 32, \"seed\": $i}"
done > "$work/prompts.jsonl"

start=$(date +%s.%N)
"$orthus" generate --model "$model" --prompts "$work/prompts.jsonl" > "$work/together.jsonl"
together=$(echo "$(date +%s.%N) - $start" | bc)

start=$(date +%s.%N)
for i in 1 2 3 4 5 6 7 8; do
  "$orthus" generate --model "$model" --prompt "Bench prompt number $i: tell me something." --max-tokens 32 \
    --seed "$i" > "$work/alone-$i.txt"
done
separate=$(echo "$(date +%s.%N) - $start" | bc)

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
lines = [json.loads(line) for line in open(f"{work}/together.jsonl")]
same = all(open(f"{work}/alone-{i + 1}.txt").read() == line["text"] + "\n" for i, line in enumerate(lines))
if not same:
    sys.exit("a request's text differs between --prompts and its separate run")
PY
echo "together (generate --prompts): ${together} s"
echo "separate (8 x generate):       ${separate} s"
