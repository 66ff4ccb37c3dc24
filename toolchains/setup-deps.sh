#!/usr/bin/env bash
# Installs the Debian 12 packages connect-proxy builds, tests and benchmarks with.
# Idempotent: packages already installed are skipped; apt-get runs only when something is missing.
# Usage: toolchains/setup-deps.sh [build|test|bench|fuzz]   (test and bench include the levels before
# them; fuzz is build plus clang and its libFuzzer/sanitizer runtimes, for toolchains/fuzz.sh)
set -euo pipefail

level=${1:-build}

build_pkgs=(g++ cmake ninja-build pkg-config
            libboost1.81-all-dev libboost-json1.81-dev libboost-url1.81-dev
            liburing-dev libssl-dev libseccomp-dev libnghttp2-dev)
# ca-certificates and libnss3-tools: the trust stores `connect proxy trust` fills (tests relocate them);
# chromium: the browser test of HTTPS trust; nghttp2-client: nghttp and h2load for the HTTP/2 suite;
# util-linux and mount: the doctor and hosts tests resolve names in a private mount namespace (unshare).
test_pkgs=(curl openssl ca-certificates libnss3-tools chromium clang-format nghttp2-client util-linux mount)
bench_pkgs=(wrk nginx-light haproxy linux-perf)
# The fuzz targets build with clang 14 (libFuzzer, ASan, UBSan runtimes); GNU ld links them.
fuzz_pkgs=(clang-14 libclang-rt-14-dev)

wanted=("${build_pkgs[@]}")
case "$level" in
  build) ;;
  test) wanted+=("${test_pkgs[@]}") ;;
  bench) wanted+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  fuzz) wanted+=("${fuzz_pkgs[@]}") ;;
  *) echo "setup-deps: unknown level '$level' (build, test, bench or fuzz)" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#wanted[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
