#!/usr/bin/env bash
# The chaos run (tests/chaos/chaos_test.cc), as long as you like: a 4-node loopback
# cluster of real daemons runs tasks and actor calls while a random worker is SIGKILLed
# every LUMEN_CHAOS_WORKER_KILL_MS and a random non-head node every LUMEN_CHAOS_NODE_KILL_MS
# (a new node takes its place). Prints what it survived as a JSON line.
#   scripts/chaos.sh                 10 minutes, 20 tasks/s, 20 actors, 60 calls/s
#   LUMEN_CHAOS_SECONDS=3600 scripts/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export LUMEN_CHAOS_SECONDS="${LUMEN_CHAOS_SECONDS:-600}"
export LUMEN_CHAOS_TASKS_PER_S="${LUMEN_CHAOS_TASKS_PER_S:-20}"
export LUMEN_CHAOS_ACTORS="${LUMEN_CHAOS_ACTORS:-20}"
export LUMEN_CHAOS_CALLS_PER_S="${LUMEN_CHAOS_CALLS_PER_S:-60}"
bash scripts/install-deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset release > /dev/null
cmake --build --preset release -j"$(nproc)" --target chaos_test lumen_cli
LUMEN_CLI="$PWD/build/release/src/cli/lumen" build/release/tests/chaos_test
