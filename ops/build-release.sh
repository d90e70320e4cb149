#!/usr/bin/env bash
# Builds the release `orthus` with the Swift runtime linked in (so a host or container needs only the C libraries),
# copies it to OUT (default .build/dist), and checks that every shared library it names comes from a package listed
# in ops/runtime-packages.txt, the list the container's runtime stage installs (cluster/Containerfile): CI runs this,
# so the container build's steps are tested even where no container engine is.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/dist}
swift build -c release --product orthus --static-swift-stdlib
mkdir -p "$out"
cp .build/release/orthus "$out/orthus"

mapfile -t runtime < <(grep -v '^#' ops/runtime-packages.txt | grep -v '^$')
# The libraries the binary itself names (apt brings each package's own dependencies), found where the loader finds
# them, and the package that installed each.
declare -A found
while read -r library path; do found[$library]=$path; done < <(ldd "$out/orthus" | awk '$2 == "=>" { print $1, $3 }')
missing=0
for library in $(readelf -d "$out/orthus" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  # The C library, the loader and libgcc come with every Debian system.
  case "$library" in libc.so.* | libm.so.* | ld-linux-*.so.* | libgcc_s.so.*) continue ;; esac
  path=${found[$library]:-}
  package=""
  [ -n "$path" ] && package=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
  if [ -z "$package" ] || ! printf '%s\n' "${runtime[@]}" | grep -qx "$package"; then
    echo "orthus needs $library (${path:-not found}) from package '${package:-unknown}', not in ops/runtime-packages.txt" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] || exit 1
"$out/orthus" --version
echo "built $out/orthus; its libraries are all in ops/runtime-packages.txt"
