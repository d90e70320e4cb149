#!/usr/bin/env bash
# Installs the Debian packages the build needs (C libraries and the protobuf-c compiler) and iproute2 (ip and tc, for
# the network-namespace test bed, ops/netbed.sh). Idempotent.
set -euo pipefail

packages=(libopenblas-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libpng-dev pkg-config iproute2)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
