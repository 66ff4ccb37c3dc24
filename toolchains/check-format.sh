#!/usr/bin/env bash
# Format guard: fails when a tracked C++ file in src, include, tests or bench differs from what clang-format
# makes of it with the repo's .clang-format. Usage: toolchains/check-format.sh   (lists the drifting files)
set -euo pipefail
cd "$(dirname "$0")/.."

# The committed .clang-format was written for clang-format 14; another major version formats differently.
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format not found (toolchains/setup-deps.sh test installs it)" >&2
  exit 2
fi
version=$(clang-format --version | sed -nE 's/.*version ([0-9]+)\..*/\1/p')
if [ "$version" != 14 ]; then
  echo "check-format: clang-format $version found, the tree is formatted with clang-format 14" >&2
  exit 2
fi

# One clang-format over every file (a process per file took a minute on a busy machine); it reports each
# drifting spot as "<file>:<line>:<col>: error: code should be clang-formatted".
status=0
report=$(git ls-files -z -- 'src/*.cpp' 'src/*.hpp' 'include/*.cpp' 'include/*.hpp' 'tests/*.cpp' 'tests/*.hpp' \
                            'bench/*.cpp' 'bench/*.hpp' |
           xargs -0 -r clang-format --dry-run --Werror --style=file 2>&1) || status=$?
mapfile -t drifting < <(sed -nE 's/^([^:]+):[0-9]+:[0-9]+: error: code should be clang-formatted.*/\1/p' <<<"$report" |
                          sort -u)
if [ "$status" -ne 0 ] && [ ${#drifting[@]} -eq 0 ]; then
  echo "$report" >&2
  echo "check-format: clang-format failed (status $status)" >&2
  exit 2
fi

if [ ${#drifting[@]} -gt 0 ]; then
  printf '%s: not formatted\n' "${drifting[@]}"
  echo "check-format: ${#drifting[@]} file(s) drift from .clang-format; fix with: clang-format -i <file>" >&2
  exit 1
fi
