#!/usr/bin/env bash
# Everything CI checks: system packages, generated protobuf code up to date, formatting, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
ops/gen-protos.sh --check
swift format lint --strict --recursive Sources Tests Package.swift
swift test
