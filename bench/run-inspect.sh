#!/usr/bin/env bash
# The request inspector's cost on the data path: one proxy with capture on (the default) and one with
# "inspect": false, same upstream, measured in one run, interleaved, with wrk: keep-alive and new
# connections (Connection: close). Prints requests/s per round and the median ratio on/off; first, the
# capture's own cost in ns per exchange (bench/inspect/capture_bench.cpp), which no load noise blurs.
# Usage: bench/run-inspect.sh [-r ROUNDS] [--seconds S] [--connections N] [--threads N]
#        (env: BUILD_DIR, default build/ in the source tree)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
rounds=3
seconds=5
connections=50
threads=1
while [ $# -gt 0 ]; do
  case "$1" in
    -r|--rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "run-inspect: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "run-inspect: needs wrk" >&2; exit 1; }
connect_bin=$build_dir/src/app/connect
[ -x "$connect_bin" ] || { echo "run-inspect: no $connect_bin (build the connect target)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

c++ -std=c++20 -O2 -pthread -o "$work/upstream" "$here/http/upstream.cpp"
c++ -std=c++20 -O2 -I"$src_dir/include" -o "$work/capture-bench" "$here/inspect/capture_bench.cpp" \
  "$src_dir/src/inspect/record.cpp" "$src_dir/src/inspect/store.cpp"
"$work/capture-bench"
"$work/upstream" --port 0 >"$work/upstream.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$work/upstream.out" && break; sleep 0.1; done
upstream_port=$(awk '/listening/ {print $2}' "$work/upstream.out")

# start_proxy NAME INSPECT_JSON: a foreground proxy on an ephemeral port; sets port_NAME.
start_proxy() {
  local name=$1 inspect=$2 home=$work/home-$1
  mkdir -p "$home"
  printf '{"routes": [{"name": "api", "port": %s, "host": "127.0.0.1"}], "quiet": true, "inspect": %s}\n' \
    "$upstream_port" "$inspect" >"$home/config.json"
  PRIVATECONNECT_HOME=$home "$connect_bin" proxy start --foreground --port 0 --io uring \
    --threads "$threads" --config "$home/config.json" >"$home/out" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 100); do grep -q "running on port" "$home/out" && break; sleep 0.1; done
  eval "port_$name=$(grep -o 'running on port [0-9]*' "$home/out" | awk '{print $4}')"
}
start_proxy on '{"requests": 1000, "bodyBytes": 16384}'
start_proxy off 'false'

# CPU ticks (user + system) the process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# sample PORT PID EXTRA_HEADER: "requests/s cpu-us-per-request" of one wrk sample. The proxy's CPU time
# per request is what a loaded machine blurs least: it does not count the time others took the CPU.
sample() {
  local extra=() before after out hz
  [ -n "$3" ] && extra=(-H "$3")
  hz=$(getconf CLK_TCK)
  before=$(ticks "$2")
  out=$(wrk -t 1 -c "$connections" -d "${seconds}s" -H "Host: api.localhost" "${extra[@]}" "http://127.0.0.1:$1/")
  after=$(ticks "$2")
  awk -v t=$((after - before)) -v hz="$hz" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%s %.2f\n", r, t * 1e6 / hz / n}' <<<"$out"
}

declare -A rate cpu
for w in keepalive newconn; do
  header=""
  [ $w = newconn ] && header="Connection: close"
  for r in $(seq "$rounds"); do
    order="on off"
    [ $((r % 2)) = 0 ] && order="off on"
    for t in $order; do
      port_var=port_$t
      pid_var=pid_$t
      read -r rate[$w,$t,$r] cpu[$w,$t,$r] < <(sample "${!port_var}" "${!pid_var}" "$header")
    done
    echo "$w round $r: on ${rate[$w,on,$r]} req/s ${cpu[$w,on,$r]} us CPU/req," \
      "off ${rate[$w,off,$r]} req/s ${cpu[$w,off,$r]} us CPU/req"
  done
  for m in rate cpu; do
    ratios=$(for r in $(seq "$rounds"); do
      eval "a=\${$m[$w,on,$r]} b=\${$m[$w,off,$r]}"
      awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f\n", a / b}'
    done | sort -n)
    median=$(echo "$ratios" | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}')
    echo "$w: $m capture on / off, median of $rounds rounds: $median"
  done
done
