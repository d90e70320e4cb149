#!/usr/bin/env bash
# The main job on the bundled model: installs what is missing, builds, starts a local cluster (cluster/local.json:
# a coordinator, two stages, an LM-head worker and two diffusion-head workers), submits one job of every mode to it at
# once, and writes real outputs to out/ (or $1):
#   inspect.txt   the checkpoint's components and per-stage memory for a two-stage split
#   status.txt    the cluster's members and pipeline, as `orthus status` shows them
#   generated.txt text generated from a prompt (greedy, KV cache)
#   image.png     text-to-image (CFG 5, 100 DDIM steps), latents.npy its latents
#   answer.txt    image-to-text: a question about Tests/Fixtures/images/landscape-37x23.png
#   interleaved/  interleaved text and images: image-N.png and index.html (interleaved.txt: its text)
#   cluster-logs/ one log per cluster process
#   logits.npy / hidden.npy   float32 logits and final hidden states of the golden prompt "p7" (single process);
#                             compare with Tests/Fixtures/goldens/tiny-orthus-p7-{logits,hidden}.npy (transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-Tests/Fixtures/tiny-orthus}
out=${1:-out}
prompt=${PROMPT:-"A red circle on the left of a blue square."}

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
"${submit[@]}" --prompt "$prompt" --max-tokens 48 > "$out/generated.txt" &
text=$!
"${submit[@]}" --prompt "$prompt" --image-out "$out/image.png" --latents-out "$out/latents.npy" --seed 1 &
image=$!
"${submit[@]}" --image Tests/Fixtures/images/landscape-37x23.png --prompt "What is in the picture?" \
    --max-tokens 24 > "$out/answer.txt" &
answer=$!
"${submit[@]}" --interleaved --out-dir "$out/interleaved" --prompt "Draw picture number 0 and tell me about it." \
    --max-tokens 120 --seed 1 > "$out/interleaved.txt" &
interleaved=$!
for job in $text $image $answer $interleaved; do wait "$job"; done
echo "generated: $(cat "$out/generated.txt")"
echo "answer:    $(cat "$out/answer.txt")"

"$orthus" logits --model "$model" --ids 0,8781,9289,9375,9127,8985,9351 --out "$out/logits.npy" --hidden-out "$out/hidden.npy"
echo
echo "wrote $(ls "$out" | tr '\n' ' ')to $out/ (open $out/interleaved/index.html in a browser)"
