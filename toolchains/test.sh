#!/usr/bin/env bash
# Sets up, builds and runs every test. Usage: toolchains/test.sh [release|debug|asan]
#   release: -O2 (default); debug: -Og -g; asan: AddressSanitizer + UndefinedBehaviorSanitizer.
# Each flavour builds in its own folder (build-<flavour>) so they never mix.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
case "$flavour" in
  release) build_type=Release ;;
  debug) build_type=Debug ;;
  asan) build_type=Asan ;;
  *) echo "test.sh: unknown flavour '$flavour' (release, debug or asan)" >&2; exit 2 ;;
esac

# Guards first: they take a second and need nothing installed, the build takes minutes.
toolchains/check-layers.sh
toolchains/check-layers.sh --self-test
toolchains/setup-deps.sh test
toolchains/check-format.sh  # after setup-deps: it installs clang-format
build_dir="build-$flavour"
# The benchmarks are compiled (so they keep building) but not run here; sanitized copies add nothing.
build_bench=ON
[ "$flavour" = asan ] && build_bench=OFF
# CONNECT_BUILD_TESTS=ON is explicit: a folder configured with tests OFF (as install.sh once did in
# build-release) keeps that in its cache, and the suite would silently build and run nothing.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
      -DCMAKE_TOOLCHAIN_FILE="$PWD/toolchains/gcc.cmake" -DCONNECT_BUILD_TESTS=ON \
      -DCONNECT_BUILD_BENCH="$build_bench" >/dev/null
cmake --build "$build_dir"

if [ "$flavour" = asan ]; then
  # detect_leaks: every coroutine frame and io object must be freed at shutdown.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error --timeout 900
