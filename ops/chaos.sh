#!/usr/bin/env bash
# A soak on the namespace test bed (ops/netbed.sh; needs root): a keyed cluster of the bundled model across six
# hosts takes a steady stream of jobs of every mode while, every few seconds, one of its processes is killed with
# SIGKILL and started again (the coordinator keeps a journal) or one host's cable is cut for 1-15 s. Every answer is
# compared with single-process `orthus generate`. Prints submitted, completed, identical, refused and lost.
#
#   [ORTHUS=BINARY] ops/chaos.sh [MINUTES]      (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-2}
# ORTHUS=PATH soaks that binary (a copy, say, while the tree is rebuilt); else the tree is built and its binary used.
if [ -n "${ORTHUS:-}" ]; then orthus=$ORTHUS; else swift build 2>&1 | tail -1; orthus=$PWD/.build/debug/orthus; fi
model=$PWD/cluster/models/orthus-shapes
work=$(mktemp -d)
bed=chaos$$
declare -A pid
trap 'kill -9 "${pid[@]}" 2>/dev/null || true; ops/netbed.sh down $bed' EXIT
ops/netbed.sh up $bed coord stage0 stage1 heads diffusion client
"$orthus" keys "$work/keys" >/dev/null 2>&1
at() { ops/netbed.sh address $bed "$1"; }
keys=(--curve-dir "$work/keys")
workers=tcp://$(at coord):5556
client=(--coordinator "tcp://$(at coord):5555" "${keys[@]}")
join=(--coordinator "$workers" --model "$model" "${keys[@]}")

# Each role: its host and its command. Starting a role again replaces the process (same --key for a slot).
declare -A host=(
  [coordinator]=coord [stage0]=stage0 [stage1]=stage1 [lm]=heads [diffusion-a]=heads [diffusion-b]=diffusion
)
start() {
  local role=$1 command
  case $role in
    coordinator) command=(coordinator --model "$model" --listen "tcp://$(at coord):5555" --workers "$workers"
                          --journal "$work/journal" "${keys[@]}") ;;
    stage0) command=(stage "${join[@]}" --layers '0..<2' --listen "tcp://$(at stage0):5601" --key stage0) ;;
    stage1) command=(stage "${join[@]}" --layers '2..<4' --listen "tcp://$(at stage1):5601" --key stage1) ;;
    lm) command=(lm-head "${join[@]}" --key lm) ;;
    diffusion-a) command=(diffusion-head "${join[@]}" --key diffusion-a) ;;
    diffusion-b) command=(diffusion-head "${join[@]}" --key diffusion-b) ;;
  esac
  ops/netbed.sh run $bed "${host[$role]}" "$orthus" "${command[@]}" >> "$work/$role.log" 2>&1 &
  pid[$role]=$!
  disown "${pid[$role]}"  # killed on purpose: no job-control message
}
for role in coordinator stage0 stage1 lm diffusion-a diffusion-b; do start $role; done
ops/netbed.sh run $bed client "$orthus" status "${client[@]}" --wait 120 > /dev/null

# The jobs: every mode, a few seeds; each one's reference is generate's answer, computed once.
jobs=(
  "text|--prompt|a story about a red circle|--max-tokens|24|--seed|SEED|--temperature|0.8"
  "image|--prompt|a blue square below a green circle|--seed|SEED|--image-out|OUT/image.png"
  "question|--prompt|where is the green triangle?|--image|$PWD/cluster/eval/shapes/images/q-032.png"
  "interleaved|--prompt|draw a green triangle on the left.|--interleaved|--out-dir|OUT/answer|--seed|SEED|--max-tokens|80"
)
run_job() {  # folder, command...: its stdout, stderr and exit status go to the folder
  local out=$1 status=0; shift
  mkdir -p "$out"
  "$@" > "$out/stdout" 2> "$out/stderr" || status=$?  # (set -e would end the job's subshell before it says)
  echo $status > "$out/status"
}
arguments() {  # job spec, seed, folder
  IFS='|' read -r -a fields <<< "$1"
  for field in "${fields[@]:1}"; do field=${field//SEED/$2}; echo "${field//OUT/$3}"; done
}
answer() { { cat "$1/stdout"; cat "$1"/image.png "$1"/answer/* 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }

submitted=0
submits=()
running() { local n=0; for p in "${submits[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo $n; }
end=$((SECONDS + minutes * 60))
next_fault=$((SECONDS + 5))
faults=()
while [ $SECONDS -lt $end ]; do
  if [ "$(running)" -lt 6 ]; then
    spec=${jobs[$((submitted % 4))]}
    seed=$((submitted % 3))
    out=$work/jobs/$submitted
    mapfile -t args < <(arguments "$spec" $seed "$out")
    echo "$spec|$seed" > "$work/spec-$submitted"
    run_job "$out" ops/netbed.sh run $bed client "$orthus" submit "${client[@]}" --reattach-timeout 90 "${args[@]}" &
    submits+=($!)
    submitted=$((submitted + 1))
  fi
  if [ $SECONDS -ge $next_fault ]; then
    if [ $((RANDOM % 2)) = 0 ]; then
      roles=(coordinator stage0 stage1 lm diffusion-a diffusion-b)
      role=${roles[$((RANDOM % 6))]}
      kill -9 "${pid[$role]}" 2>/dev/null || true
      faults+=("kill -9 $role")
      sleep $((1 + RANDOM % 3))
      start $role
    else
      hosts=(coord stage0 stage1 heads diffusion)
      h=${hosts[$((RANDOM % 5))]}
      length=$((1 + RANDOM % 15))
      ops/netbed.sh cut $bed $h
      faults+=("cut $h ${length}s")
      (sleep $length; ops/netbed.sh mend $bed $h) &
    fi
    next_fault=$((SECONDS + 5 + RANDOM % 6))
  fi
  sleep 1
done
echo "stopped submitting after $minutes minute(s); waiting for the jobs to end"
for p in "${submits[@]}"; do wait "$p" 2>/dev/null || true; done

set +e  # the tally reads whatever each job left, including nothing
completed=0 identical=0 refused=0 lost=0
declare -A reference
for i in $(seq 0 $((submitted - 1))); do
  out=$work/jobs/$i
  if [ "$(cat "$out/status" 2>/dev/null)" != 0 ]; then
    # Never accepted (the coordinator was away when it was submitted): refused, the client was told. Accepted and
    # then not finished: lost.
    if grep -qE "^job [0-9]+ accepted" "$out/stderr"; then
      lost=$((lost + 1)); echo "lost: job $i ($(cat "$work/spec-$i")): $(tail -1 "$out/stderr")"
    else
      refused=$((refused + 1))
    fi
    continue
  fi
  completed=$((completed + 1))
  key=$(cat "$work/spec-$i")
  if [ -z "${reference[$key]:-}" ]; then
    ref=$work/reference/$i
    mapfile -t args < <(arguments "${key%|*}" "${key##*|}" "$ref")
    run_job "$ref" "$orthus" generate --model "$model" "${args[@]}"
    reference[$key]=$(answer "$ref")
  fi
  if [ "$(answer "$out")" = "${reference[$key]}" ]; then identical=$((identical + 1)); else
    echo "differs: job $i ($key)"; fi
done
echo "faults: ${#faults[@]} (${faults[*]})"
echo "submitted $submitted, completed $completed, identical $identical, refused $refused, lost $lost"
