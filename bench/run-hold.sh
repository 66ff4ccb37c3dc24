#!/usr/bin/env bash
# Restart-holding: (1) how soon held requests are answered once their upstream is back (connect-hold-bench:
# N requests held, the upstream listens again after a random 300-800 ms; from its listen() to the first
# and to the last answer, p50/p99 over the rounds), and (2) keep-alive throughput with holding on
# (timeouts.hold 10, the default) beside holding off (0), wrk against the same upstream, rounds alternated.
# Per io backend; saved to bench/results/hold-<date>-<time>.md.
# Usage: bench/run-hold.sh [-n ROUNDS] [-r REQUESTS] [--io "uring asio"] [--wrk-rounds K] [--seconds S]
#        [--no-wrk] [--build]   (env: BUILD_DIR, default build/ in the source tree, configured with
#        -DCONNECT_BUILD_BENCH=ON for connect-hold-bench and connect-http-upstream)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-hold
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

rounds=30
requests=10
backends="uring asio"
wrk_rounds=3
seconds=5
connections=50
do_wrk=1
build=0
proxy_cpu=0
peer_cpu=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--rounds) rounds=$2; shift 2 ;;
    -r|--requests) requests=$2; shift 2 ;;
    --io) backends=$2; shift 2 ;;
    --wrk-rounds) wrk_rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --no-wrk) do_wrk=0; shift ;;
    --build) build=1; shift ;;
    -h|--help) usage ;;
    *) echo "run-hold: unknown option $1" >&2; usage ;;
  esac
done
check_counts "$rounds" "$requests" "$wrk_rounds" "$seconds"
check_words "io backend" "$backends" "uring asio"
if [ "$do_wrk" = 1 ] && ! command -v wrk >/dev/null; then
  echo "run-hold: wrk is not installed; the keep-alive part is skipped" >&2
  do_wrk=0
fi
make_work_dir

if [ "$build" = 1 ]; then
  nice -n 10 cmake --build "$build_dir" --target connect connect-hold-bench connect-http-upstream -j2 \
    >"$work/build.log" 2>&1 || { echo "run-hold: the build failed:" >&2; tail -n 5 "$work/build.log" >&2; exit 1; }
fi
connect_src=$build_dir/src/app/connect
hold_bin=$build_dir/bench/connect-hold-bench
upstream_bin=$build_dir/bench/connect-http-upstream
for b in "$connect_src" "$hold_bin"; do
  [ -x "$b" ] || { echo "run-hold: $b is missing (configure with -DCONNECT_BUILD_BENCH=ON, or --build)" >&2; exit 1; }
done
# A private copy: others may relink build/ while this runs.
connect_bin=$work/connect
cp "$connect_src" "$connect_bin"

pin() { [ "$(nproc)" -ge 2 ] && echo "taskset -c $1"; }

# start_proxy IO HOLD UPSTREAM_PORT: a proxy with one worker and the route app -> UPSTREAM_PORT; sets
# $proxy_pid and $proxy_port.
start_proxy() {
  local io=$1 hold=$2 upstream_port=$3 home
  home=$work/home-$io-$hold
  mkdir -p "$home"
  # The same names serve each round: the last proxy's "running on port" line must not be read as this one's.
  rm -f "$work/proxy-$io-$hold.out" "$work/proxy-$io-$hold.err"
  printf '{"routes": [{"name": "app", "port": %s, "host": "127.0.0.1"}], "timeouts": {"hold": %s}}\n' \
    "$upstream_port" "$hold" >"$home/config.json"
  # shellcheck disable=SC2046
  PRIVATECONNECT_HOME=$home $(pin "$proxy_cpu") "$connect_bin" proxy start --foreground --quiet --port 0 \
    --threads 1 --io "$io" --config "$home/config.json" >"$work/proxy-$io-$hold.out" 2>"$work/proxy-$io-$hold.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  proxy_port=
  for _ in $(seq 100); do
    proxy_port=$(sed -nE 's/.*running on port ([0-9]+).*/\1/p' "$work/proxy-$io-$hold.out" 2>/dev/null | head -n1)
    [ -n "$proxy_port" ] && return 0
    kill -0 "$proxy_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "run-hold: $io: the proxy did not start: $(tail -n 3 "$work/proxy-$io-$hold.err" | tr '\n' ' ')" >&2
  return 1
}

report=$(new_report hold)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A summary
for io in $backends; do
  free_port
  start_proxy "$io" 10 "$free" || continue
  echo "run-hold: $io: $rounds rounds of $requests held requests" >&2
  # shellcheck disable=SC2046
  $(pin "$peer_cpu") "$hold_bin" --proxy-port "$proxy_port" --upstream-port "$free" --requests "$requests" \
    --rounds "$rounds" >"$work/hold-$io.out" 2>"$work/hold-$io.err" || true
  summary[$io]=$(grep '^summary' "$work/hold-$io.out" || echo "failed: $(tail -n 2 "$work/hold-$io.err" | tr '\n' ' ')")
  stop "$proxy_pid"
done

declare -A rps
if [ "$do_wrk" = 1 ]; then
  [ -x "$upstream_bin" ] || { echo "run-hold: $upstream_bin is missing: no keep-alive part" >&2; do_wrk=0; }
fi
if [ "$do_wrk" = 1 ]; then
  # shellcheck disable=SC2046
  $(pin "$peer_cpu") "$upstream_bin" --port 0 >"$work/upstream.out" 2>"$work/upstream.err" &
  upstream_pid=$!
  pids+=("$upstream_pid")
  upstream_port=$(listening_port upstream "$upstream_pid")
  [ -n "$upstream_port" ] || { echo "run-hold: the upstream did not start" >&2; exit 1; }
  for io in $backends; do
    for k in $(seq "$wrk_rounds"); do
      for hold in 10 0; do
        start_proxy "$io" "$hold" "$upstream_port" || continue
        # shellcheck disable=SC2046
        $(pin "$peer_cpu") wrk -t1 -c"$connections" -d"${seconds}s" -H "Host: app.localhost" \
          "http://127.0.0.1:$proxy_port/" >"$work/wrk-$io-$hold-$k.out" 2>&1 || true
        got=$(awk '/^Requests\/sec/{printf "%d", $2}' "$work/wrk-$io-$hold-$k.out")
        if [ -z "$got" ]; then
          echo "run-hold: $io hold $hold round $k: wrk gave no figure: $(tail -n 3 "$work/wrk-$io-$hold-$k.out" | tr '\n' ' ')" >&2
          got="?"
        fi
        rps[$io-$hold]+="$got "
        stop "$proxy_pid"
      done
    done
  done
  stop "$upstream_pid"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# Restart-holding, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  host_line
  echo "- source: $(source_commit); $(built_note "$connect_src") ($(build_type || echo '?'))"
  echo "- proxy: \`connect proxy start --foreground --quiet --port 0 --threads 1 --io IO\`, pinned to CPU $proxy_cpu;"
  echo "  clients, upstream and wrk pinned to CPU $peer_cpu; everything on 127.0.0.1"
  echo "- load average before/after: $load_before / $load_after (the machine is shared)"
  echo
  echo "## From the upstream's listen() to the held requests' answers"
  echo
  echo "connect-hold-bench (bench/hold/hold_bench.cpp): per round one request warms the route, the upstream"
  echo "stops, $requests requests are sent and held, 300-800 ms later (random) the upstream listens again."
  echo "Milliseconds from its listen() to the first and the last answer; nearest-rank percentiles."
  echo
  echo "| io | rounds | failed | first p50 | first p99 | first max | last p50 | last p99 |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for io in $backends; do
    s=${summary[$io]:-}
    if [[ "$s" == summary* ]]; then
      echo "| $io | $(field rounds "$s") | $(field failed "$s") | $(field first_p50_ms "$s") |" \
        "$(field first_p99_ms "$s") | $(field first_max_ms "$s") | $(field last_p50_ms "$s") | $(field last_p99_ms "$s") |"
    else
      echo "| $io | $s | | | | | | |"
    fi
  done
  if [ "$do_wrk" = 1 ]; then
    echo
    echo "## Keep-alive with holding on and off"
    echo
    echo "wrk -t1 -c$connections -d${seconds}s through the proxy to connect-http-upstream, $wrk_rounds rounds each,"
    echo "alternated (hold 10, hold 0, ...). Requests/s per round and their median."
    echo
    echo "| io | timeouts.hold | req/s per round | median | on/off |"
    echo "|---|---:|---|---:|---:|"
    for io in $backends; do
      on=$(tr ' ' '\n' <<<"${rps[$io-10]:-}" | grep -E '^[0-9]+$' | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}')
      off=$(tr ' ' '\n' <<<"${rps[$io-0]:-}" | grep -E '^[0-9]+$' | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}')
      ratio=$(awk -v a="${on:-0}" -v b="${off:-0}" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
      echo "| $io | 10 | ${rps[$io-10]:-} | ${on:-} | $ratio |"
      echo "| $io | 0 | ${rps[$io-0]:-} | ${off:-} | |"
    done
  fi
  echo
  echo "## Rounds (first_ms last_ms)"
  echo
  for io in $backends; do
    echo "- $io: $(awk '/^round/ && /first_ms/ {printf "%s%s/%s", sep, $4, $6; sep = " "}' "$work/hold-$io.out" 2>/dev/null)"
  done
} >"$report"
sed -n '/^| io /,/^$/p' "$report"
echo "run-hold: saved $report" >&2
