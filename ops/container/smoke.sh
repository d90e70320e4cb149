#!/usr/bin/env bash
# Runs the image (cluster/Containerfile) as a cluster of containers on their own network, as the Kubernetes files do:
# a coordinator, two stages, an LM-head worker and two diffusion-head workers, each in its own container as the image's
# unprivileged user, every link authenticated and encrypted with keys made by the image's `orthus keys`, reaching each
# other by container name. It submits the three jobs of ops/run.sh at once from a client container, then runs each as
# `orthus generate` in one container, and checks that every output is byte-identical. Needs podman (its `:U` volume
# option hands the scratch folders to the image's user) and the bundled model; prints how long each part took.
#   ops/container/smoke.sh [IMAGE]     (default orthus:0.1.0; build it with
#                                       podman build -f cluster/Containerfile -t orthus:0.1.0 .)
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:-orthus:0.1.0}
engine=podman
model=$PWD/cluster/models/orthus-shapes
question_image=$PWD/cluster/eval/shapes/images/q-032.png
scratch=$(mktemp -d)
net=orthus-smoke-$$
# Every container's name (and so its name on the network) is new to each run: a name that a stopped container of an
# earlier run held can take the network's resolver tens of seconds to fail (see README, "The container image").
c() { echo "$1-$$"; }
mkdir -p "$scratch/keys" "$scratch/cluster" "$scratch/single"
containers=()
cleanup() {
  [ ${#containers[@]} -eq 0 ] || "$engine" rm -f "${containers[@]}" >/dev/null
  "$engine" network rm "$net" >/dev/null 2>&1 || true
  if [ "${failed:-1}" -eq 1 ]; then
    for name in "${containers[@]}"; do echo "--- $name" >&2; "$engine" logs --tail 5 "$name" >&2 || true; done
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
seconds() { date +%s.%N; }
elapsed() { awk -v from="$1" -v to="$(seconds)" 'BEGIN { printf "%.1f s", to - from }'; }

"$engine" network create "$net" >/dev/null
# :U gives the folders to the image's user (uid 10001), which writes the keys and the outputs.
keys=(-v "$scratch/keys:/etc/orthus/keys:U")
model_mount=(-v "$model:/models/orthus:ro")
"$engine" run --rm "${keys[@]}" "$image" keys /etc/orthus/keys --client smoke >/dev/null

role() { # ROLE ARGS...: a cluster process in its own container, named $(c ROLE)
  local name
  name=$(c "$1")
  shift
  containers+=("$name")
  "$engine" run -d --name "$name" --network "$net" "${keys[@]}" "${model_mount[@]}" "$image" "$@" >/dev/null
}
start=$(seconds)
role coordinator coordinator --model /models/orthus --listen 'tcp://*:5555' --workers 'tcp://*:5556' \
  --curve-dir /etc/orthus/keys
worker=(--coordinator "tcp://$(c coordinator):5556" --model /models/orthus --curve-dir /etc/orthus/keys)
for stage in 0 1; do
  role "stage-$stage" stage "${worker[@]}" --layers "$((stage * 2))..<$((stage * 2 + 2))" --listen 'tcp://*:5601' \
    --advertise "tcp://$(c "stage-$stage"):5601" --key "stage-$stage"
done
role lm-head lm-head "${worker[@]}"
role diffusion-1 diffusion-head "${worker[@]}"
role diffusion-2 diffusion-head "${worker[@]}"

client=(--network "$net" -v "$scratch/keys:/etc/orthus/keys:ro" -v "$question_image:/in/question.png:ro")
coordinator=(--coordinator "tcp://$(c coordinator):5555" --curve-dir /etc/orthus/keys --key-name smoke)
"$engine" run --rm "${client[@]}" "$image" status "${coordinator[@]}" --wait 120 >"$scratch/status.txt"
echo "cluster of 6 containers ready in $(elapsed "$start")"
grep -c alive "$scratch/status.txt" | xargs echo "members alive:"

jobs=(
  "image|--prompt|a red circle above a blue square|--image-out|/out/image.png|--latents-out|/out/latents.npy|--seed|1"
  "answer|--image|/in/question.png|--prompt|where is the green triangle?|--max-tokens|8"
  "interleaved|--interleaved|--out-dir|/out/interleaved|--prompt|draw a green triangle on the left.|--max-tokens|64|--seed|1"
)
run_jobs() { # MODE FOLDER: every job, at once, through the cluster (submit) or in one process each (generate)
  local mode=$1 folder=$2 pids=()
  for job in "${jobs[@]}"; do
    IFS='|' read -r -a args <<<"$job"
    local name=${args[0]}
    mkdir -p "$folder/$name"
    local common=(--rm "${client[@]}" -v "$folder/$name:/out:U" "$image")
    if [ "$mode" = submit ]; then
      "$engine" run "${common[@]}" submit "${coordinator[@]}" "${args[@]:1}" >"$folder/$name/stdout.txt" &
    else
      "$engine" run "${model_mount[@]}" "${common[@]}" generate --model /models/orthus "${args[@]:1}" \
        >"$folder/$name/stdout.txt" &
    fi
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}
start=$(seconds)
run_jobs submit "$scratch/cluster"
echo "three jobs through the cluster at once: $(elapsed "$start")"
start=$(seconds)
run_jobs generate "$scratch/single"
echo "the same three as generate, one container each: $(elapsed "$start")"

diff -r "$scratch/cluster" "$scratch/single" >&2 || { echo "the cluster's outputs differ from generate's" >&2; exit 1; }
echo "answer: $(cat "$scratch/cluster/answer/stdout.txt")"
echo "interleaved: $(cat "$scratch/cluster/interleaved/stdout.txt")"
find "$scratch/cluster" -type f | sed "s|$scratch/cluster/||" | sort | xargs echo "byte-identical:"

# Stopped as `orthus up` stops a cluster: the head workers first (they drain), then the stages, the coordinator last;
# each must exit by itself, with status 0, well within the stop timeout (after which the engine would kill it).
start=$(seconds)
for group in "diffusion-1 diffusion-2 lm-head" "stage-0 stage-1" "coordinator"; do
  read -r -a roles <<<"$group"
  "$engine" stop -t 60 $(for role in "${roles[@]}"; do c "$role"; done) >/dev/null
done
echo "stopped in order in $(elapsed "$start")"
for name in "${containers[@]}"; do
  status=$("$engine" inspect -f '{{.State.ExitCode}}' "$name")
  [ "$status" = 0 ] || { echo "$name exited with status $status" >&2; exit 1; }
done
drained=$("$engine" logs "$(c coordinator)" 2>&1 | grep -c "drained and left" || true)
[ "$drained" -eq 3 ] || { echo "the coordinator's log shows $drained head workers drained, not 3" >&2; exit 1; }
echo "head workers drained and left: $drained; every container exited with status 0"

# Started again; the second stage's container stops. The first stage goes on reconnecting to a name that no longer
# resolves, on an I/O thread of its own, so its heartbeats go on and the coordinator must not declare it down within
# 12 s, longer than its 10 s down time.
"$engine" start "${containers[@]}" >/dev/null
"$engine" run --rm "${client[@]}" "$image" status "${coordinator[@]}" --wait 120 >/dev/null
since=$(date --iso-8601=seconds)
"$engine" stop -t 20 "$(c stage-1)" >/dev/null
sleep 12
if "$engine" logs --since "$since" "$(c coordinator)" 2>&1 | grep "layers 0..<2, stage-0) is down" >&2; then
  echo "the first stage was declared down when the second stopped" >&2
  exit 1
fi
echo "the second stage stopped; the first was still alive 12 s later"

# Stopped in the worst order, the coordinator first (as when a whole deployment is deleted and the
# coordinator goes before the rest), with 20 s before the engine kills: a head worker whose drain nobody confirms
# leaves by itself after 5 s, and no process waits on a lookup of the coordinator's name, gone with its container.
start=$(seconds)
"$engine" stop -t 20 "$(c coordinator)" >/dev/null
"$engine" stop -t 20 "${containers[@]:1}" >/dev/null
echo "then stopped, the coordinator first, in $(elapsed "$start")"
for name in "${containers[@]}"; do
  status=$("$engine" inspect -f '{{.State.ExitCode}}' "$name")
  if [ "$status" != 0 ]; then
    "$engine" logs "$name" 2>&1 | tail -5 >&2
    echo "$name exited with status $status when stopped after the coordinator" >&2
    exit 1
  fi
done
unconfirmed=$("$engine" logs "$(c diffusion-1)" 2>&1 | grep -c "did not confirm the drain" || true)
[ "$unconfirmed" -ge 1 ] || { echo "diffusion-1 did not report its unconfirmed drain" >&2; exit 1; }
failed=0
