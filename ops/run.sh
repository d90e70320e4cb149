#!/usr/bin/env bash
# The main job on the bundled model: installs what is missing, builds, and writes real outputs to out/ (or $1).
#   inspect.txt   the checkpoint's components and per-stage memory for a two-stage split
#   generated.txt text generated from a prompt (greedy, KV cache)
#   image.png     text-to-image (CFG 5, 100 DDIM steps), latents.npy its latents
#   answer.txt    image-to-text: a question about Tests/Fixtures/images/landscape-37x23.png
#   interleaved/  interleaved text and images: image-N.png and index.html
#   logits.npy / hidden.npy   float32 logits and final hidden states of the golden prompt "p7"; compare with
#                             Tests/Fixtures/goldens/tiny-orthus-p7-{logits,hidden}.npy (computed by transformers)
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
echo
echo "prompt: $prompt"
"$orthus" generate --model "$model" --prompt "$prompt" --max-tokens 48 --stats | tee "$out/generated.txt"
"$orthus" generate --model "$model" --prompt "$prompt" --image-out "$out/image.png" --latents-out "$out/latents.npy" --seed 1
"$orthus" generate --model "$model" --image Tests/Fixtures/images/landscape-37x23.png --prompt "What is in the picture?" \
    --max-tokens 24 | tee "$out/answer.txt"
"$orthus" generate --model "$model" --interleaved --out-dir "$out/interleaved" --prompt "Draw picture number 0 and tell me about it." \
    --max-tokens 120 --seed 1
"$orthus" logits --model "$model" --ids 0,8781,9289,9375,9127,8985,9351 --out "$out/logits.npy" --hidden-out "$out/hidden.npy"
echo
echo "wrote $(ls "$out" | tr '\n' ' ')to $out/ (open $out/interleaved/index.html in a browser)"
