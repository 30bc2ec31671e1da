#!/usr/bin/env bash
# README command 1: install what is missing, build Release, and run every bundled example
# on the embedded one-node cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release
cmake --build --preset release -j"$(nproc)"
bash scripts/run-examples.sh build/release
