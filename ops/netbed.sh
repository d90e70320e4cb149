#!/usr/bin/env bash
# A test bed of hosts in network namespaces: each host a namespace with one interface (eth0) cabled by a veth pair to
# a bridge in a hub namespace, on 10.77.0.0/24 (host i of the list is 10.77.0.<i+1>). The hosts see each other and
# nothing else, not even this machine's loopback, so a cluster on them talks over real links that can be cut.
# Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
#
#   ops/netbed.sh up BED HOST...        make the hub and the hosts (BED-hub, BED-HOST)
#   ops/netbed.sh address BED HOST      print a host's address
#   ops/netbed.sh run BED HOST CMD...   run a command on a host
#   ops/netbed.sh cut BED HOST          unplug a host's cable (both ends down)
#   ops/netbed.sh mend BED HOST         plug it back
#   ops/netbed.sh slow BED HOST RATE    a token-bucket qdisc on the host's interface (RATE like 1mbit; "off" removes it)
#   ops/netbed.sh down BED              remove the bed's namespaces
#   ops/netbed.sh demo                  a keyed cluster across six hosts runs every mode, with a link cut (see below)
set -euo pipefail

hosts_file() { echo "/run/netbed-$1.hosts"; }

index_of() {  # the host's line number in the bed's host list, from 1
  local n
  n=$(grep -nx "$2" "$(hosts_file "$1")" | cut -d: -f1)
  [ -n "$n" ] || { echo "netbed: no host $2 in bed $1" >&2; exit 2; }
  echo "$n"
}

case "${1:-}" in
  up)
    bed=$2; shift 2
    ip netns add "$bed-hub"
    ip -n "$bed-hub" link add br0 type bridge
    ip -n "$bed-hub" link set br0 up
    ip -n "$bed-hub" link set lo up
    : > "$(hosts_file "$bed")"
    n=0
    for host in "$@"; do
      n=$((n + 1))
      echo "$host" >> "$(hosts_file "$bed")"
      ip netns add "$bed-$host"
      ip -n "$bed-hub" link add "v$n" type veth peer name eth0 netns "$bed-$host"
      ip -n "$bed-hub" link set "v$n" master br0
      ip -n "$bed-hub" link set "v$n" up
      ip -n "$bed-$host" addr add "10.77.0.$n/24" dev eth0
      ip -n "$bed-$host" link set eth0 up
      ip -n "$bed-$host" link set lo up
    done
    ;;
  address) echo "10.77.0.$(index_of "$2" "$3")" ;;
  run) bed=$2; host=$3; shift 3; exec ip netns exec "$bed-$host" "$@" ;;
  cut)
    n=$(index_of "$2" "$3")
    ip -n "$2-hub" link set "v$n" down
    ip -n "$2-$3" link set eth0 down
    ;;
  mend)
    n=$(index_of "$2" "$3")
    ip -n "$2-hub" link set "v$n" up
    ip -n "$2-$3" link set eth0 up
    ;;
  slow)
    if [ "$4" = off ]; then
      ip netns exec "$2-$3" tc qdisc del dev eth0 root 2>/dev/null || true
    else
      ip netns exec "$2-$3" tc qdisc replace dev eth0 root tbf rate "$4" burst 32kbit latency 400ms
    fi
    ;;
  down)
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$2-" || true); do ip netns del "$ns"; done
    rm -f "$(hosts_file "$2")"
    ;;
  demo)
    # Builds orthus, makes keys, starts a coordinator, two stages, an LM-head worker and two diffusion workers on five
    # hosts of a bed, submits one job of each mode from a sixth, cuts the second stage's cable for 1 s during a job,
    # and compares every answer with single-process `orthus generate`.
    cd "$(dirname "$0")/.."
    swift build 2>&1 | tail -1
    orthus=$PWD/.build/debug/orthus
    model=$PWD/cluster/models/orthus-shapes
    work=$(mktemp -d)
    bed=demo$$
    pids=()
    trap 'kill "${pids[@]}" 2>/dev/null || true; ops/netbed.sh down $bed' EXIT
    ops/netbed.sh up $bed coord stage0 stage1 heads diffusion client
    "$orthus" keys "$work/keys" >/dev/null 2>&1
    at() { ops/netbed.sh address $bed "$1"; }
    on() { local host=$1; shift; ops/netbed.sh run $bed "$host" "$orthus" "$@"; }
    keys=(--curve-dir "$work/keys")
    workers=tcp://$(at coord):5556
    on coord coordinator --model "$model" --listen "tcp://$(at coord):5555" --workers "$workers" "${keys[@]}" \
      > "$work/coordinator.log" 2>&1 &
      pids+=($!)
    on stage0 stage --coordinator "$workers" --model "$model" --layers '0..<2' --listen "tcp://$(at stage0):5601" \
      "${keys[@]}" > "$work/stage0.log" 2>&1 &
      pids+=($!)
    on stage1 stage --coordinator "$workers" --model "$model" --layers '2..<4' --listen "tcp://$(at stage1):5601" \
      "${keys[@]}" > "$work/stage1.log" 2>&1 &
      pids+=($!)
    on heads lm-head --coordinator "$workers" --model "$model" "${keys[@]}" > "$work/lm.log" 2>&1 &
    pids+=($!)
    on heads diffusion-head --coordinator "$workers" --model "$model" "${keys[@]}" > "$work/diffusion-a.log" 2>&1 &
    pids+=($!)
    on diffusion diffusion-head --coordinator "$workers" --model "$model" "${keys[@]}" > "$work/diffusion-b.log" 2>&1 &
    pids+=($!)
    client=(--coordinator "tcp://$(at coord):5555" "${keys[@]}")
    on client status "${client[@]}" --wait 120 >/dev/null
    echo "cluster ready across $(wc -l < "/run/netbed-$bed.hosts") hosts; logs in $work"
    prompt=(--prompt "a red circle above a blue square" --seed 3)
    "$orthus" generate --model "$model" "${prompt[@]}" --image-out "$work/alone.png" >/dev/null 2>&1
    # The job is submitted while stage 1's cable is out, so its micro-batches cross the cut.
    ops/netbed.sh cut $bed stage1
    (sleep 1; ops/netbed.sh mend $bed stage1) &
    mending=$!
    on client submit "${client[@]}" "${prompt[@]}" --image-out "$work/cluster.png" 2>/dev/null
    wait $mending
    echo "stage1's cable was cut for 1 s during the job"
    cmp "$work/alone.png" "$work/cluster.png" && echo "text-to-image across the cut: identical to generate"
    question=(--prompt "where is the green triangle?" --image cluster/eval/shapes/images/q-032.png)
    [ "$("$orthus" generate --model "$model" "${question[@]}" 2>/dev/null)" = "$(on client submit "${client[@]}" \
      "${question[@]}" 2>/dev/null)" ] && echo "image-to-text: identical to generate"
    on client status "${client[@]}"
    ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
