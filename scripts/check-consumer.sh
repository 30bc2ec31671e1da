#!/usr/bin/env bash
# Checks that a program outside the tree (examples/consumer) can use lumen three ways:
#   1. find_package against the build tree   (-Dlumen_DIR=<build dir>)
#   2. find_package against an install       (cmake --install, -DCMAKE_PREFIX_PATH)
#   3. pkg-config against the same install   (pkg-config --cflags --libs lumen)
# Each build is run and must print 3.
# Usage: scripts/check-consumer.sh [BUILD_DIR]
#   BUILD_DIR: a configured lumen build dir (default build/release); the script brings its
#   lumen target up to date first. LUMEN_JOBS: build parallelism (default 2).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-build/release}
[[ -d $build_dir ]] || build_dir=$root/$build_dir
if [[ ! -d $build_dir ]]; then
  echo "check-consumer: no build dir '$build_dir'" >&2
  exit 1
fi
build_dir=$(cd "$build_dir" && pwd)
consumer=$root/examples/consumer
jobs=${LUMEN_JOBS:-2}

if [[ ! -f $build_dir/lumenConfig.cmake ]]; then
  echo "check-consumer: $build_dir is not a configured lumen build dir" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lumen-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Runs a command with its output in $work/log, shown only when it fails.
quietly() {
  if ! "$@" >"$work/log" 2>&1; then
    cat "$work/log" >&2
    echo "check-consumer: failed: $*" >&2
    exit 1
  fi
}

# Runs the app given as $1 and fails unless it exits 0 and its own output is exactly
# "3". Lines "(pid=N) ..." are worker output echoed by the runtime, not the app's: they
# are shown but not compared.
check_prints_3() {
  local app=$1 out own
  out=$("$app")
  own=$(grep -v '^(pid=[0-9]*) ' <<<"$out" || true)
  if [[ $own != 3 ]]; then
    echo "check-consumer: $app printed '$out', expected 3" >&2
    exit 1
  fi
  if [[ $out != "$own" ]]; then
    echo "    note: worker output echoed by the runtime:"
    grep '^(pid=[0-9]*) ' <<<"$out" | sed 's/^/      /'
  fi
  echo "    $app printed 3 (liblumen: $(ldd "$app" | awk '/liblumen/ {print $3}'))"
}

echo "==> building lumen in $build_dir (target lumen)"
quietly cmake --build "$build_dir" --target lumen --parallel "$jobs"

echo "==> 1. find_package(lumen) against the build tree"
quietly cmake -S "$consumer" -B "$work/from-build" -DCMAKE_BUILD_TYPE=Release \
  -Dlumen_DIR="$build_dir"
quietly cmake --build "$work/from-build" --parallel "$jobs"
check_prints_3 "$work/from-build/app"

echo "==> 2. find_package(lumen) against an install in $work/prefix"
quietly cmake --install "$build_dir" --prefix "$work/prefix"
quietly cmake -S "$consumer" -B "$work/from-install" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix"
found=$(sed -n 's/^lumen_DIR:PATH=//p' "$work/from-install/CMakeCache.txt")
if [[ $found != "$work/prefix/"* ]]; then
  echo "check-consumer: found lumen at '$found', not in the install prefix" >&2
  exit 1
fi
echo "    lumen_DIR=$found"
quietly cmake --build "$work/from-install" --parallel "$jobs"
check_prints_3 "$work/from-install/app"

echo "==> 3. pkg-config against the install"
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs lumen)
echo "    pkg-config --cflags --libs lumen: $flags"
# shellcheck disable=SC2086  # the flags are words
quietly "${CXX:-c++}" -O2 "$consumer/../hello/main.cc" $flags -o "$work/app-pkgconfig"
check_prints_3 "$work/app-pkgconfig"

echo "check-consumer: all three ways work"
