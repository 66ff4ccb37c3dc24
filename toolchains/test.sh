#!/usr/bin/env bash
# Sets up, builds and runs every test. Usage: toolchains/test.sh [release|debug|asan|asio-only]
#   release: -O2 (default); debug: -Og -g; asan: AddressSanitizer + UndefinedBehaviorSanitizer;
#   asio-only: -O2 without the io_uring backend and with liburing unusable: the fallback stands alone.
# Each flavour builds in its own folder (build-<flavour>) so they never mix.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
case "$flavour" in
  release) build_type=Release ;;
  debug) build_type=Debug ;;
  asan) build_type=Asan ;;
  asio-only) build_type=Release ;;
  *) echo "test.sh: unknown flavour '$flavour' (release, debug, asan or asio-only)" >&2; exit 2 ;;
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
uring_options=()
if [ "$flavour" = asio-only ]; then
  # liburing's headers sit in /usr/include, on every compiler's path: its include guard, defined up front,
  # empties <liburing.h> instead, so any use of liburing fails to compile (checked below, not assumed).
  uring_options=(-DCONNECT_WITH_URING=OFF -DCMAKE_CXX_FLAGS=-DLIB_URING_H)
  build_bench=OFF
  printf '#include <liburing.h>\nint main() { io_uring ring; return io_uring_queue_init(8, &ring, 0); }\n' |
    g++ -x c++ -DLIB_URING_H -fsyntax-only - 2>/dev/null &&
    { echo "test.sh: -DLIB_URING_H does not hide liburing" >&2; exit 1; }
fi
# CONNECT_BUILD_TESTS=ON is explicit: a folder configured with tests OFF (as install.sh once did in
# build-release) keeps that in its cache, and the suite would silently build and run nothing.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" \
      -DCMAKE_TOOLCHAIN_FILE="$PWD/toolchains/gcc.cmake" -DCONNECT_BUILD_TESTS=ON \
      -DCONNECT_BUILD_BENCH="$build_bench" "${uring_options[@]}" >/dev/null
if [ "$flavour" = asio-only ]; then
  # Configured without liburing: pkg-config was not asked for it, and no compile or link line names it.
  # (Into a variable first: with pipefail, grep -q closing the pipe early would fail the pipeline.)
  commands=$(ninja -C "$build_dir" -t commands)
  if grep -qi liburing "$build_dir/CMakeCache.txt" || grep -Eq 'liburing|-luring|CONNECT_HAVE_URING' <<<"$commands"; then
    echo "test.sh: the asio-only build still uses liburing" >&2
    exit 1
  fi
fi
cmake --build "$build_dir"

if [ "$flavour" = asan ]; then
  # detect_leaks: every coroutine frame and io object must be freed at shutdown.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error --timeout 900 --parallel 2
