#!/usr/bin/env bash
# Builds the libFuzzer targets in BUILD_DIR and runs each for SECONDS seconds.
#   tests/fuzz/run.sh BUILD_DIR SECONDS
# Every executable named *_fuzz from tests/fuzz/*_fuzz.cpp runs with a scratch copy of
# tests/fuzz/corpus/<name>/ (name without _fuzz; the checked-in seeds are never written to) and
# -dict=tests/fuzz/<name>.dict when that file exists. Prints one line per target; exits non-zero
# when a target fails to build or finds a crash (the log and crash input stay under BUILD_DIR).
# FUZZ_TARGETS="jwt_fuzz ..." builds and runs only those targets.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$(realpath -m "$1")
seconds=$2
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$fuzz_dir/../.." && pwd)
jobs=${FUZZ_BUILD_JOBS:-2}

mkdir -p "$build_dir"
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  if ! cmake -S "$repo_root" -B "$build_dir" -G Ninja -DPYLON_FUZZ=ON \
      -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      >"$build_dir/configure.log" 2>&1; then
    echo "fuzz: configure failed, see $build_dir/configure.log" >&2
    tail -n 20 "$build_dir/configure.log" >&2
    exit 1
  fi
fi

targets=()
for source in "$fuzz_dir"/*_fuzz.cpp; do
  [[ -e "$source" ]] || continue
  target=$(basename "$source" .cpp)
  if [[ -n "${FUZZ_TARGETS:-}" && " $FUZZ_TARGETS " != *" $target "* ]]; then
    continue
  fi
  targets+=("$target")
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz: no *_fuzz.cpp targets in $fuzz_dir" >&2
  exit 1
fi

if ! cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}" >"$build_dir/build.log" 2>&1; then
  echo "fuzz: build failed, see $build_dir/build.log" >&2
  tail -n 20 "$build_dir/build.log" >&2
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

status=0
for target in "${targets[@]}"; do
  name=${target%_fuzz}
  work="$build_dir/fuzz-run/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [[ -d "$fuzz_dir/corpus/$name" ]]; then
    cp -r "$fuzz_dir/corpus/$name/." "$work/corpus/"
  fi
  args=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  if [[ -f "$fuzz_dir/$name.dict" ]]; then
    args+=(-dict="$fuzz_dir/$name.dict")
  fi
  if "$build_dir/tests/fuzz/$target" "${args[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1; then
    runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz.log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$work/fuzz.log" | tail -n 1 | grep -o '[0-9]*' || echo "?")
    echo "fuzz: $target ok: $runs runs in ${seconds}s, coverage $cov, corpus $(ls "$work/corpus" | wc -l) files"
  else
    crash=$(ls "$work/artifacts" 2>/dev/null | head -n 1)
    echo "fuzz: $target FAILED: see $work/fuzz.log${crash:+, input $work/artifacts/$crash}"
    status=1
  fi
done
exit $status
