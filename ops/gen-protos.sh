#!/usr/bin/env bash
# Regenerates the protobuf-c code in Sources/CWire from Protos/. With --check, fails if the committed code differs.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protos=$(cd Protos && find . -name '*.proto' | sort)
(cd Protos && protoc-c --c_out="$out" $protos)

# SwiftPM wants public headers under include/ and sources beside them; flatten the package path into the names.
staged=$(mktemp -d)
trap 'rm -rf "$out" "$staged"' EXIT
mkdir -p "$staged/include"
while IFS= read -r file; do
  relative=${file#"$out"/}
  flat=$(echo "$relative" | tr '/' '_')
  target="$staged/$flat"
  case "$file" in *.h) target="$staged/include/$flat" ;; esac
  # Only quoted includes of generated headers change: orthus/v1/x.pb-c.h -> orthus_v1_x.pb-c.h.
  sed -E '/^#include "/ s|/|_|g' "$file" > "$target"
done < <(find "$out" -type f \( -name '*.pb-c.h' -o -name '*.pb-c.c' \) | sort)

if [ "${1:-}" = "--check" ]; then
  if ! diff -r "$staged" Sources/CWire --exclude=module.modulemap --exclude=CWire.h -q; then
    echo "Sources/CWire is out of date with Protos/: run ops/gen-protos.sh and commit the result" >&2
    exit 1
  fi
  echo "Sources/CWire matches Protos/"
else
  find Sources/CWire -name '*.pb-c.[ch]' -delete
  cp -r "$staged"/. Sources/CWire/
  echo "regenerated Sources/CWire from Protos/"
fi
