#!/usr/bin/env bash
# Runs every bundled example from a build dir, one after another.
# Usage: scripts/run-examples.sh [BUILD_DIR] [ARGS...]
#   BUILD_DIR defaults to build/release (configured with LUMEN_BUILD_EXAMPLES=ON, built);
#   ARGS are passed to every example (e.g. --lumen-num-cpus=4).
#   LUMEN_EXAMPLE_TIMEOUT: seconds one example may run (default 300).
# Exits non-zero when an example is missing, fails or times out.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-build/release}
shift || true
[[ -d $build_dir ]] || build_dir=$root/$build_dir
if [[ ! -d $build_dir ]]; then
  echo "run-examples: no build dir '$build_dir'" >&2
  exit 1
fi
bin_dir=$build_dir/examples
timeout_s=${LUMEN_EXAMPLE_TIMEOUT:-300}

names=()
for source in "$root"/examples/*/main.cc; do
  name=$(basename "$(dirname "$source")")
  [[ $name == consumer ]] && continue  # out-of-tree project: scripts/check-consumer.sh
  names+=("$name")
done

failed=()
for name in "${names[@]}"; do
  echo "=== example: $name ==="
  exe=$bin_dir/$name
  if [[ ! -x $exe ]]; then
    echo "--- $name: MISSING ($exe not built)"
    failed+=("$name")
    continue
  fi
  start=$SECONDS
  rc=0
  timeout --foreground "$timeout_s" "$exe" "$@" || rc=$?
  if ((rc == 0)); then
    echo "--- $name: ok ($((SECONDS - start)) s)"
  else
    echo "--- $name: FAILED (exit $rc after $((SECONDS - start)) s)"
    failed+=("$name")
  fi
done

echo
if ((${#failed[@]})); then
  echo "${#failed[@]} of ${#names[@]} examples failed: ${failed[*]}"
  exit 1
fi
echo "all ${#names[@]} examples passed"
