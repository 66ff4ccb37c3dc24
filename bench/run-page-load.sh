#!/usr/bin/env bash
# Page-load benchmark: a page of 300 ES modules (an unbundled dev server's first load) loaded cold by
# headless Chromium through connect-proxy over HTTPS, once with HTTP/2 (ALPN h2) and once with it
# disabled (--disable-http2: HTTP/1.1, at most six connections to the host), RUNS times each,
# interleaved. Each run has a fresh profile (no HTTP cache, no TLS sessions). The page writes into its
# DOM when its load event came and when its module graph had run (ms from the navigation's start), read
# with --dump-dom; the medians are saved to bench/results/page-load-<date>-<time>.md.
# Usage: bench/run-page-load.sh [-r RUNS] [--modules N] [--io uring|asio] [--no-build]
#        (env: BUILD_DIR, default build/ in the source tree; CHROMIUM, default the real binary of
#        Debian's chromium package)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-page-load
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

runs=7
modules=300
io=uring
build=1
proxy_cpu=0
peer_cpu=1

while [ $# -gt 0 ]; do
  case "$1" in
    -r|--runs) runs=$2; shift 2 ;;
    --modules) modules=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    *) echo "run-page-load: unknown option $1" >&2; usage ;;
  esac
done
check_counts "$runs" "$modules"
check_words io "$io" "uring asio"

chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
  # Debian's /usr/bin/chromium wrapper adds flags from /etc/chromium.d: the real binary is run.
  for c in /usr/lib/chromium/chromium "$(command -v chromium || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { chromium=$c; break; }
  done
fi
[ -x "$chromium" ] || { echo "run-page-load: no Chromium (Debian chromium; toolchains/setup-deps.sh test)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "run-page-load: python3 is needed for the upstream" >&2; exit 1; }

make_work_dir
build_note="not built by this run (--no-build)"
if [ "$build" = 1 ]; then
  build_note="built by this run"
  targets=$io
  build_connect
fi
connect_bin=$build_dir/src/app/connect
[ -x "$connect_bin" ] || connect_bin=$(find_bin connect)
[ -x "$connect_bin" ] || { echo "run-page-load: no connect binary in $build_dir" >&2; exit 1; }

# --- Upstream and proxy ---------------------------------------------------------------------------------
free_port
upstream_port=$free
# The site (bench/http/module_site.py): page.html imports every module from one module script; its load
# listener writes the figures and the protocols seen into the DOM.
launch upstream "$peer_cpu" python3 "$here/http/module_site.py" "$upstream_port" "$modules"
upstream_pid=$started_pid
wait_port "$upstream_pid" "$upstream_port" || { echo "run-page-load: the upstream did not start" >&2; exit 1; }

free_port
proxy_port=$free
home=$work/connect-home
mkdir -p "$home"
printf '{"routes": [{"name": "site", "port": %s}]}\n' "$upstream_port" >"$work/routes.json"
PRIVATECONNECT_HOME=$home launch proxy "$proxy_cpu" "$connect_bin" proxy start --https --foreground --quiet \
  --port "$proxy_port" --threads 1 --io "$io" --config "$work/routes.json"
proxy_pid=$started_pid
wait_port "$proxy_pid" "$proxy_port" || { echo "run-page-load: the proxy did not start: $(tail -n 3 "$work/proxy.err")" >&2; exit 1; }
for _ in $(seq 100); do grep -qs 'Press Ctrl+C to stop' "$work/proxy.out" && break; sleep 0.1; done

# --- The browser's user: a HOME whose NSS database trusts the proxy's CA -------------------------------
browser_home=$work/browser-home
mkdir -p "$browser_home" "$work/trust-root"
browser() {
  env -u XDG_CONFIG_HOME -u XDG_CACHE_HOME -u XDG_DATA_HOME -u XDG_RUNTIME_DIR HOME="$browser_home" \
    timeout 120 taskset -c "$peer_cpu" "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --disable-background-networking --disable-component-update --disable-sync --disable-extensions \
    --no-first-run --no-default-browser-check "$@" 2>>"$work/chromium.err"
}
# A first run makes the browser's NSS database; `connect proxy trust` then adds the CA to it (its system
# store line fails under the empty trust root, hence `|| true`; the NSS line is checked).
browser --user-data-dir="$work/profile-0" --dump-dom about:blank >/dev/null
env -u XDG_DATA_HOME -u XDG_CONFIG_HOME HOME="$browser_home" PRIVATECONNECT_HOME="$home" \
  CONNECT_PROXY_TRUST_ROOT="$work/trust-root" "$connect_bin" proxy trust >"$work/trust.out" 2>&1 || true
grep -q '\[ok\] CA added to NSS database' "$work/trust.out" ||
  { echo "run-page-load: the CA did not go into the browser's NSS database:" >&2; cat "$work/trust.out" >&2; exit 1; }

url="https://site.localhost:$proxy_port/page.html"
declare -A loads mods
failures=0
for ((r = 1; r <= runs; r++)); do
  for proto in h2 http/1.1; do
    flags=()
    [ "$proto" = http/1.1 ] && flags=(--disable-http2)
    dom=$(browser "${flags[@]}" --user-data-dir="$work/profile-$r-${proto%%/*}" --dump-dom "$url" || true)
    # The <p> the listener wrote (the script's own text holds the words, never a number after them).
    line=$(grep -o '<p>result load [0-9][^<]*' <<<"$dom" || true)
    load=$(field load "$line"); ran=$(field modules "$line"); count=$(field count "$line")
    page=$(field page "$line"); seen=$(field module-protocols "$line")
    if [ -z "$load" ] || [ "$count" != "$modules" ] || [ "$page" != "$proto" ] || [ "$seen" != "$proto" ]; then
      echo "run-page-load: run $r over $proto did not load as expected: '${line:-no result in the DOM}'" >&2
      grep -v 'dbus/' "$work/chromium.err" | tail -n 5 >&2 || true
      echo "DOM: ${dom:0:300} ... ${dom: -300}" >&2
      failures=$((failures + 1))
      continue
    fi
    echo "run $r $proto: load event at $load ms, modules ran at $ran ms" >&2
    loads[$proto]+="$load "
    mods[$proto]+="$ran "
  done
done
stop "$proxy_pid"
proxy_stopped=$stopped
stop "$upstream_pid"

# --- Report ---------------------------------------------------------------------------------------------
report=$(new_report page-load)
ms() { tr ' ' '\n' <<<"$1" | grep . | median; }
span() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) print lo " - " hi}'; }
{
  echo "# Page load: $modules ES modules through connect-proxy, HTTP/2 and HTTP/1.1"
  echo
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); source $(source_commit), $(build_type) build; $build_note"
  host_line
  echo "- Chromium: $("$chromium" --version 2>/dev/null | head -n1), headless, cold (a new profile each run);" \
    "HTTP/1.1 runs with --disable-http2"
  echo "- connect-proxy: \`connect proxy start --https --foreground --quiet --threads 1 --io $io\` on CPU $proxy_cpu" \
    "(stopped: $proxy_stopped); upstream: bench/http/module_site.py (HTTP/1.1, a thread per connection), Chromium on CPU $peer_cpu"
  echo "- $runs runs per protocol, interleaved; $failures failed run(s); figures in ms from the navigation's start"
  echo
  echo "| protocol | load event, median | range | module graph ran, median | range |"
  echo "|---|---:|---:|---:|---:|"
  for proto in h2 http/1.1; do
    echo "| $proto | $(ms "${loads[$proto]:-}") | $(span "${loads[$proto]:-}") | $(ms "${mods[$proto]:-}") | $(span "${mods[$proto]:-}") |"
  done
} >"$report"
cat "$report"
echo "run-page-load: saved $report" >&2
[ "$failures" = 0 ]
