#!/usr/bin/env bash
# Installs what building and testing need. Idempotent.
#   ops/install-deps.sh           the build's C libraries and the protobuf-c compiler, and what the tests use:
#                                 iproute2 (ip and tc, for the network-namespace test bed, ops/netbed.sh), Prometheus
#                                 (a real scraper for the metrics test), Chromium (a real browser on the gateway's
#                                 playground page), kubectl, systemd-analyze, PyYAML and kubernetes-validate (the
#                                 deployment files' test), OpenAI's Python client (the gateway's outside test), and
#                                 qemu-user with Debian's arm64 C library (the kernels' ARM64 check, ops/arm)
#   ops/install-deps.sh --build   only what building needs (the container build, cluster/Containerfile, uses this)
set -euo pipefail

build=(libopenblas-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libpng-dev pkg-config)
tests=(iproute2 prometheus chromium kubectl systemd python3-pip qemu-user libc6-dev-arm64-cross libgcc-12-dev-arm64-cross)
packages=("${build[@]}")
[ "${1:-}" = "--build" ] || packages+=("${tests[@]}")

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
else
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ "${1:-}" = "--build" ] && exit 0

# The tests run these as `python3` and `kubernetes-validate` from PATH, as a user would.
for module in openai:openai yaml:pyyaml kubernetes_validate:kubernetes-validate; do
  if python3 -c "import ${module%%:*}" 2>/dev/null; then
    echo "python ${module##*:} present"
  else
    python3 -m pip install -q --disable-pip-version-check "${module##*:}"
  fi
done
