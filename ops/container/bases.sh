#!/usr/bin/env bash
# Makes the two images cluster/Containerfile starts from, on a host that cannot pull them (no registry reachable, an
# air-gapped network), from what such a host does have: a Debian archive (a mirror) and a Swift toolchain unpacked
# from swift.org's tarball.
#   debian:bookworm-slim   Debian 12's minimal base system (debootstrap --variant=minbase)
#   swift:6.3-bookworm     that, the packages swift.org's own bookworm image installs beside the toolchain, and the
#                          toolchain copied into /usr as that image has it
# Both are stored under the names the Containerfile uses, so `podman build -f cluster/Containerfile .` takes them
# instead of pulling. Needs root, podman and debootstrap.
#   ops/container/bases.sh [--mirror URL] [--toolchain DIR]
#     --mirror     the Debian archive (default http://deb.debian.org/debian)
#     --toolchain  the folder holding usr/bin/swift (default: the toolchain of the swift on PATH)
set -euo pipefail
mirror=http://deb.debian.org/debian
toolchain=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mirror) mirror=$2; shift 2 ;;
    --toolchain) toolchain=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$toolchain" ]; then
  swift=$(command -v swift) || { echo "no swift on PATH; pass --toolchain DIR" >&2; exit 1; }
  toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$swift")")")")
fi
[ -x "$toolchain/usr/bin/swift" ] || { echo "$toolchain/usr/bin/swift is not there" >&2; exit 1; }
version=$("$toolchain/usr/bin/swift" --version 2>&1 | sed -n 's/.*Swift version \([0-9]*\.[0-9]*\).*/\1/p' | head -1)
[ "$version" = "6.3" ] || echo "note: the toolchain is Swift $version; it is stored as swift:6.3-bookworm" >&2

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

debootstrap --variant=minbase bookworm "$scratch/root" "$mirror" >"$scratch/debootstrap.log" \
  || { tail -20 "$scratch/debootstrap.log" >&2; exit 1; }
# As Debian's own slim image: the archive named for apt, no package lists or caches left behind.
echo "deb $mirror bookworm main" >"$scratch/root/etc/apt/sources.list"
rm -rf "$scratch/root/var/lib/apt/lists/"* "$scratch/root/var/cache/apt/"*.bin
tar -C "$scratch/root" -c . | podman import --change 'CMD ["bash"]' - docker.io/library/debian:bookworm-slim
rm -rf "$scratch/root"

# swift.org's bookworm image: these packages, then the toolchain's usr/ over /usr.
cat >"$scratch/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       binutils git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev libpython3-dev libsqlite3-0 \
       libstdc++-12-dev libxml2-dev libncurses-dev libz3-dev pkg-config tzdata zlib1g-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN cp -a /toolchain/usr/. /usr/ && swift --version
EOF
podman build --volume "$toolchain:/toolchain:ro" -f "$scratch/Containerfile" -t docker.io/library/swift:6.3-bookworm \
  "$scratch"
podman images --filter reference=docker.io/library/debian:bookworm-slim --filter reference=docker.io/library/swift:6.3-bookworm
