#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test suite.
#   scripts/test.sh                  Release build, ctest, and the installed-package check
#   scripts/test.sh --preset asan    the same suite under ASan/UBSan (or tsan, debug)
set -euo pipefail
cd "$(dirname "$0")/.."

preset=release
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --preset=*) preset="${1#--preset=}"; shift ;;
    *) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
# ccache hits across clones in other folders (CI builds a fresh clone each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset "$preset"
cmake --build --preset "$preset" -j"$(nproc)"
# The multi-node tests (label `cluster`) run in the release and ASan suites. Under TSan
# they are left out for now: their TCP channels and long polls run paths of Debian's
# uninstrumented gRPC and Abseil whose synchronisation TSan cannot see, and it reports
# races inside those libraries (see the cluster issue's notes).
# The chaos run (label `chaos`, also `cluster`) is a release-suite test: under a
# sanitizer every process runs 2-10x slower while its killer keeps its pace, so what it
# would measure is the sanitizer, not lumen (scripts/chaos.sh runs it longer).
exclude=()
if [ "$preset" = tsan ]; then exclude=(-LE cluster); fi
if [ "$preset" = asan ]; then exclude=(-LE chaos); fi
ctest --preset "$preset" --timeout 600 "${exclude[@]}"

if [ "$preset" = release ]; then
  # A user's project finds lumen in the build tree, after install, and by pkg-config.
  bash scripts/check-consumer.sh build/release
fi

# Nothing may outlive the suite: no worker processes, no session files.
leftover=$(pgrep -a -f "build/$preset/(tests|examples)/|build/$preset/src/cli/lumen start" || true)
if [ -n "$leftover" ]; then
  echo "test.sh: processes left behind:" >&2
  echo "$leftover" >&2
  exit 1
fi
if [ -d /tmp/lumen ] && [ -n "$(ls -A /tmp/lumen)" ]; then
  echo "test.sh: files left under /tmp/lumen:" >&2
  ls -la /tmp/lumen >&2
  exit 1
fi
if compgen -G "/dev/shm/lumen_*" > /dev/null; then
  echo "test.sh: object store segments left in /dev/shm:" >&2
  ls -la /dev/shm/lumen_* >&2
  exit 1
fi
echo "test.sh: $preset suite passed"
