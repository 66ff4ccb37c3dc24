#!/usr/bin/env bash
# Kernel events per request of connect-proxy builds, counted with perf tracepoints: syscalls, io_uring_enter
# calls, SQEs, CQEs and poll arms per request, keep-alive (wrk -c50) and new connection per request, behind
# the nginx origin of run-peers.sh. Counts, unlike times, do not change when the shared machine is busy.
# --mallocs adds a second pass per load that counts libc malloc calls per request with a perf uprobe (it
# slows the proxy down, hence its own pass); the probe is removed after if this run added it.
# Usage: bench/run-counts.sh [--seconds S] [--io uring|asio] [--mallocs] NAME=BUILD_DIR...
#        (each BUILD_DIR has src/app/connect; the bench peers come from $BUILD_DIR of the first, or build/)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
bench=run-counts
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

seconds=3
io=uring
mallocs=0
builds=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
    --mallocs) mallocs=1; shift ;;
    -h|--help) usage ;;
    *=*) builds+=("$1"); shift ;;
    *) echo "run-counts: unknown argument $1" >&2; usage ;;
  esac
done
check_counts "$seconds"
check_words io "$io" "uring asio"
[ ${#builds[@]} -gt 0 ] || { echo "run-counts: name at least one NAME=BUILD_DIR" >&2; exit 2; }
command -v perf >/dev/null || { echo "run-counts: perf is not installed" >&2; exit 1; }
command -v wrk >/dev/null || { echo "run-counts: wrk is not installed" >&2; exit 1; }
build_dir=${BUILD_DIR:-$src_dir/build}
newconn_bin=$(find "$build_dir" -name connect-http-newconn -type f -perm -u+x 2>/dev/null | head -n1)
[ -n "$newconn_bin" ] || { echo "run-counts: connect-http-newconn not found under $build_dir" >&2; exit 1; }

make_work_dir
chmod 755 "$work"
malloc_event=""
added_probe=0
if [ "$mallocs" = 1 ]; then
  libc=$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ {print $NF; exit}')
  if perf probe -l 2>/dev/null | grep -q 'probe_libc:malloc '; then
    malloc_event=probe_libc:malloc
  elif [ -n "$libc" ] && perf probe -q -x "$libc" malloc 2>/dev/null; then
    malloc_event=probe_libc:malloc
    added_probe=1
  else
    echo "run-counts: cannot add a uprobe on malloc (root and libc symbols are needed); no malloc counts" >&2
  fi
fi
remove_probe() { [ "$added_probe" = 1 ] && perf probe -q -d probe_libc:malloc 2>/dev/null || true; }
trap 'remove_probe; cleanup' EXIT  # keeps make_work_dir's cleanup
events="raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_submit_req"
events+=",io_uring:io_uring_complete,io_uring:io_uring_poll_arm"

# The origin: nginx, 18 bytes for GET /, on CPU 1 with the load generators.
free_port
origin_port=$free
mkdir -p "$work/origin"
cat >"$work/origin/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/origin/nginx.pid;
error_log $work/origin/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/origin/body;
  proxy_temp_path $work/origin/proxy;
  fastcgi_temp_path $work/origin/fastcgi;
  uwsgi_temp_path $work/origin/uwsgi;
  scgi_temp_path $work/origin/scgi;
  server {
    listen 127.0.0.1:$origin_port;
    default_type text/plain;
    location = / { return 200 "hello from bench!\\n"; }
  }
}
EOF
launch origin 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" -e "$work/origin/error.log"
origin_pid=$started_pid
wait_port "$origin_pid" "$origin_port" || { echo "run-counts: nginx did not start" >&2; exit 1; }
# shellcheck disable=SC2207
origin_workers=($(pgrep -P "$origin_pid" || true))
pids+=("${origin_workers[@]}")
printf '{"routes": [{"name": "api", "port": %s}]}\n' "$origin_port" >"$work/routes.json"

# count NAME LOAD PORT PID [EVENTS]: perf stat of PID while LOAD runs; the requests made, and the events
# of perf.csv.
count() {
  local name=$1 load=$2 port=$3 p=$4 requests
  perf stat -x, -e "${5:-$events}" -p "$p" -o "$work/perf.csv" -- sleep $((seconds + 1)) &
  local perf_pid=$!
  sleep 0.5
  case "$load" in
    keepalive)
      taskset -c 1 wrk -t1 -c50 -d"${seconds}s" -H "Host: api.localhost" "http://127.0.0.1:$port/" >"$work/load.out"
      requests=$(awk '/ requests in /{print $1}' "$work/load.out") ;;
    newconn)
      taskset -c 1 "$newconn_bin" --port "$port" --host api.localhost --threads 4 --seconds "$seconds" >"$work/load.out"
      requests=$(awk '{for (i = 1; i < NF; i++) if ($i == "requests") print $(i + 1)}' "$work/load.out") ;;
  esac
  wait "$perf_pid"
  echo "$requests" >"$work/requests"
}

# row NAME LOAD PORT PID: one table row, per request.
row() {
  local name=$1 load=$2 port=$3 p=$4 per_malloc="n/a"
  if [ -n "$malloc_event" ]; then
    count "$name" "$load" "$port" "$p" "$malloc_event"
    per_malloc=$(awk -F, -v r="$(cat "$work/requests")" '$3 ~ /malloc/ { printf "%.1f", $1 / r }' "$work/perf.csv")
  fi
  count "$name" "$load" "$port" "$p"
  awk -F, -v n="$name" -v l="$load" -v r="$(cat "$work/requests")" -v m="$per_malloc" '
    $3 ~ /:/ { sub(/^[a-z_]+:/, "", $3); c[$3] = $1 }
    END {
      printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n", n, l, r, c["sys_enter"] / r,
        c["sys_enter_io_uring_enter"] / r, c["io_uring_submit_req"] / r, c["io_uring_complete"] / r,
        c["io_uring_poll_arm"] / r, m
    }' "$work/perf.csv"
}

rows=()
for b in "${builds[@]}"; do
  name=${b%%=*}
  dir=${b#*=}
  free_port
  mkdir -p "$work/home-$name"
  launch "$name" 0 env PRIVATECONNECT_HOME="$work/home-$name" "$dir/src/app/connect" proxy start --foreground \
    --quiet --port "$free" --threads 1 --io "$io" --config "$work/routes.json"
  p=$started_pid
  wait_port "$p" "$free" || { echo "run-counts: $name did not start: $(tail -n 2 "$work/$name.err")" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c50 -d1s -H "Host: api.localhost" "http://127.0.0.1:$free/" >/dev/null  # warm-up
  for load in keepalive newconn; do rows+=("$(row "$name" "$load" "$free" "$p")"); done
  stop "$p"
done
stop "$origin_pid" "${origin_workers[@]}"

echo "| build | load | requests | syscalls/req | io_uring_enter/req | SQEs/req | CQEs/req | poll arms/req | mallocs/req |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
