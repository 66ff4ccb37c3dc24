#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang 14, ASan + UBSan) in build-fuzz and runs each one
# for SECONDS (default 60) on a copy of its seed corpus, one per core at a time (FUZZ_JOBS overrides);
# exits non-zero on any finding. Run it alone: a starved target reports spurious 10 s timeouts.
# Usage: toolchains/fuzz.sh [SECONDS [TARGET...]]   (targets: the names in tests/fuzz/CMakeLists.txt)
# Findings (crash-*, leak-*, timeout-*, oom-*) stay in build-fuzz/fuzz-run/TARGET/findings/; the tracked
# corpus in tests/fuzz/corpus is never written to. docs/fuzzing.md says how to replay one.
# FUZZ_KEEP_GOING=1: fork mode that goes on after a finding (-fork=1 -ignore_crashes=1), to collect every
# distinct finding of a long run instead of stopping at the first.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all_targets=(request_head response_head chunked route_resolve config_file active_routes hub_answer tls_sniff)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

toolchains/setup-deps.sh fuzz
build_dir=build-fuzz
# Every object carries coverage and the sanitizers, the parsers under test above all; the targets add
# -fsanitize=fuzzer at link. No NDEBUG: asserts in src stay on. Build type Fuzz has no flags of its own.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Fuzz \
  -DCONNECT_BUILD_FUZZ=ON -DCONNECT_BUILD_TESTS=OFF -DCONNECT_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
  >/dev/null
cmake --build "$build_dir" --target fuzz_targets

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

dict_of() {
  case "$1" in
    config_file | active_routes) echo tests/fuzz/json.dict ;;
    route_resolve) echo "" ;;
    *) echo tests/fuzz/http.dict ;;
  esac
}

mode=()
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && mode=(-fork=1 -ignore_crashes=1)
run_root="$build_dir/fuzz-run"
jobs_max=${FUZZ_JOBS:-$(nproc)}

# One target: its run, then what the summary and the verdict need, in files of its own folder.
run_target() {
  local t=$1 bin="$build_dir/tests/fuzz/fuzz_$1" work="$run_root/$1" dict rc=0 execs cov findings
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/findings"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  dict=$(dict_of "$t")
  "$bin" "$work/corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/findings/" ${dict:+-dict="$dict"} "${mode[@]}" >"$work/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  # Fork mode prints no final stats: its last status line "#N: cov: ..." counts the executions.
  [ -z "$execs" ] && execs=$(sed -n 's/^#\([0-9]*\):* .*/\1/p' "$work/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  findings=$(find "$work/findings" -type f | wc -l)
  echo "$rc" >"$work/rc"
  printf '%-14s %12s execs  cov %-6s findings %s\n' "$t" "${execs:-?}" "${cov:-?}" "$findings" >"$work/summary"
}

for t in "${targets[@]}"; do
  [ -x "$build_dir/tests/fuzz/fuzz_$t" ] || { echo "fuzz: no target '$t'" >&2; exit 2; }
done
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  echo "fuzz: $t for ${seconds}s"
  run_target "$t" &
done
wait || true  # a target's verdict is read from its folder below

failed=0
summary=()
for t in "${targets[@]}"; do
  work="$run_root/$t"
  rc=$(cat "$work/rc" 2>/dev/null || echo 1)
  if [ "$(find "$work/findings" -type f | wc -l)" -gt 0 ] || [ "$rc" -ne 0 ]; then
    failed=1
    echo "fuzz: $t FOUND something (exit $rc); the end of $work/log:"
    tail -n 40 "$work/log"
    find "$work/findings" -type f -printf '  finding: %p (%s bytes)\n'
  fi
  summary+=("$(cat "$work/summary" 2>/dev/null || echo "$t: no summary")")
done

echo "fuzz: ${seconds}s per target"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FINDINGS (see above); turn each into a unit test before fixing it" >&2
  exit 1
fi
echo "fuzz: no findings"
