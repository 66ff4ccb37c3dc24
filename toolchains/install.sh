#!/usr/bin/env bash
# Sets up, builds (Release) and installs `connect` into PREFIX/bin (default /usr/local).
# Builds in build-install, a folder of its own: its cache says tests OFF, which must never leak into the
# build-release folder toolchains/test.sh runs the suite from.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}

toolchains/setup-deps.sh build
cmake -S . -B build-install -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE="$PWD/toolchains/gcc.cmake" -DCONNECT_BUILD_TESTS=OFF -DCONNECT_BUILD_BENCH=OFF >/dev/null
cmake --build build-install --target connect
sudo=""
if [ "$(id -u)" -ne 0 ] && [ ! -w "$prefix/bin" ]; then sudo="sudo"; fi
$sudo cmake --install build-install --prefix "$prefix" --component Unspecified
echo "installed: $prefix/bin/connect"
