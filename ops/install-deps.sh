#!/usr/bin/env bash
# Installs the Debian packages the build needs (C libraries and the protobuf-c compiler), iproute2 (ip and tc, for
# the network-namespace test bed, ops/netbed.sh), Prometheus (a real scraper for the metrics test), Chromium (a real
# browser on the gateway's playground page) and OpenAI's Python client (the gateway's outside test). Idempotent.
set -euo pipefail

packages=(libopenblas-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libpng-dev pkg-config iproute2 prometheus chromium)
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
# The tests run it as `python3` from PATH, as a user would.
if python3 -c "import openai" 2>/dev/null; then
  echo "python openai client present"
else
  python3 -m pip install -q --disable-pip-version-check openai
fi
