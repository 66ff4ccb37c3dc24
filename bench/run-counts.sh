#!/usr/bin/env bash
# Kernel events per request of connect-proxy builds, counted with perf tracepoints: syscalls, io_uring_enter
# calls, SQEs, CQEs and poll arms per request, keep-alive (wrk -c50) and new connection per request, behind
# the nginx origin of run-peers.sh. Counts, unlike times, do not change when the shared machine is busy.
# Usage: bench/run-counts.sh [--seconds S] [--io uring|asio] NAME=BUILD_DIR...
#        (each BUILD_DIR has src/app/connect; the bench peers come from $BUILD_DIR of the first, or build/)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
bench=run-counts
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

seconds=3
io=uring
builds=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
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

# count NAME LOAD PORT PID: perf stat of PID while LOAD runs; one table row per event, per request.
count() {
  local name=$1 load=$2 port=$3 p=$4 requests
  perf stat -x, -e "$events" -p "$p" -o "$work/perf.csv" -- sleep $((seconds + 1)) &
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
  awk -F, -v n="$name" -v l="$load" -v r="$requests" '
    $3 ~ /:/ { sub(/^[a-z_]+:/, "", $3); c[$3] = $1 }
    END {
      printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", n, l, r, c["sys_enter"] / r,
        c["sys_enter_io_uring_enter"] / r, c["io_uring_submit_req"] / r, c["io_uring_complete"] / r,
        c["io_uring_poll_arm"] / r
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
  for load in keepalive newconn; do rows+=("$(count "$name" "$load" "$free" "$p")"); done
  stop "$p"
done
stop "$origin_pid" "${origin_workers[@]}"

echo "| build | load | requests | syscalls/req | io_uring_enter/req | SQEs/req | CQEs/req | poll arms/req |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
