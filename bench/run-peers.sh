#!/usr/bin/env bash
# connect-proxy beside nginx and HAProxy as reverse proxies of a fast nginx origin (issue 11's layout): one
# command, results/peers-<date>-<time>.md. Everything run-http.sh takes may follow (e.g. -r 1 --seconds 2).
# Usage: bench/run-peers.sh [run-http.sh options]
#        (env: BUILD_DIR, QUIET_WAIT as for run-http.sh)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/run-http.sh" --origin nginx --idle 10000 --targets "direct uring asio nginx haproxy" "$@"
