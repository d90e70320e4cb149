#!/usr/bin/env bash
# The main job on the bundled model: installs what is missing, builds, starts a local cluster (cluster/local.json:
# a coordinator, two stages, an LM-head worker and two diffusion-head workers on cluster/models/orthus-shapes, the
# small Orthus trained on the shapes world by ops/train), submits one job of each mode the model was trained for at
# once, judges the model on the whole evaluation set through the cluster, and writes real outputs to out/ (or $1):
#   inspect.txt   the checkpoint's components and per-stage memory for a two-stage split
#   status.txt    the cluster's members and pipeline, as `orthus status` shows them
#   image.png     text-to-image of $PROMPT (100 DDIM steps, the model's CFG 1.5), latents.npy its latents
#   answer.txt    image-to-text: $QUESTION about cluster/eval/shapes/images/q-032.png
#   interleaved/  interleaved text and images: image-N.png and index.html (interleaved.txt: its text)
#   eval/         `orthus eval` through the cluster: report.html (every picture, marked pass or fail), grid.png,
#                 results.json, the pictures; eval.txt the scores by category
#   cluster-logs/ one log per cluster process
#   logits.npy / hidden.npy   float32 logits and final hidden states of the golden prompt "p7" on the random-weight
#                             test checkpoint (single process); compare with
#                             Tests/Fixtures/goldens/tiny-orthus-p7-{logits,hidden}.npy (transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
model=cluster/models/orthus-shapes  # the model cluster/local.json serves
out=${1:-out}
prompt=${PROMPT:-"a red circle above a blue square"}
question=${QUESTION:-"where is the green triangle?"}
# Guidance: the model's own, 1.5 in its generation_config.json (chosen on its validation set; README, "The bundled
# model"), which every command uses unless --cfg says otherwise.

bash ops/install-deps.sh
swift build -c release --product orthus
orthus=.build/release/orthus
mkdir -p "$out"

"$orthus" inspect "$model" | tee "$out/inspect.txt"

"$orthus" up cluster/local.json --logs "$out/cluster-logs" &
cluster=$!
trap 'kill -TERM $cluster 2>/dev/null; wait $cluster 2>/dev/null || true' EXIT
"$orthus" status --wait 120 | tee "$out/status.txt"

echo "prompt: $prompt"
submit=("$orthus" submit --coordinator tcp://127.0.0.1:5555)
"${submit[@]}" --prompt "$prompt" --image-out "$out/image.png" --latents-out "$out/latents.npy" --seed 1 &
image=$!
"${submit[@]}" --image cluster/eval/shapes/images/q-032.png --prompt "$question" --max-tokens 8 > "$out/answer.txt" &
answer=$!
"${submit[@]}" --interleaved --out-dir "$out/interleaved" --prompt "draw a green triangle on the left." \
    --max-tokens 64 --seed 1 > "$out/interleaved.txt" &
interleaved=$!
for job in $image $answer $interleaved; do wait "$job"; done
echo "answer:      $(cat "$out/answer.txt")"
echo "interleaved: $(cat "$out/interleaved.txt")"

"$orthus" eval --coordinator tcp://127.0.0.1:5555 --out "$out/eval" | tee "$out/eval.txt"

"$orthus" logits --model Tests/Fixtures/tiny-orthus --ids 0,8781,9289,9375,9127,8985,9351 --out "$out/logits.npy" --hidden-out "$out/hidden.npy"
echo
echo "wrote $(ls "$out" | tr '\n' ' ')to $out/ (open $out/interleaved/index.html in a browser)"
