#!/usr/bin/env bash
# HTTP benchmark: the same loads against the upstream directly, connect-proxy (uring, asio), nginx and HAProxy,
# measured in one run, interleaved, saved to bench/results/http-<date>-<time>.md.
# Usage: bench/run-http.sh [-r ROUNDS] [--seconds S] [--connections N] [--downloads N] [--pings N]
#        [--targets "LIST"] [--workloads "LIST"] [--stock-buffers] [--no-build] [--no-install]
#        [--baseline DIR] [--origin upstream|nginx] [--idle N] [--profile] [--workers N]
#        (env: BUILD_DIR, default build/ in the source tree; QUIET_WAIT, default 600 s; RETRY_PCT, default 5)
# --baseline DIR: another build of connect-proxy (DIR/src/app/connect, e.g. of the commit before a change)
#        measured in the same run as the targets uring-base and asio-base, so a change is read as a ratio.
# --origin nginx: GET / and GET /64m are answered by an nginx origin (1 worker, `return 200`, sendfile) instead
#        of connect-http-upstream, which then serves only the WebSocket echo (Host ws.localhost); the report is
#        results/peers-<date>-<time>.md. bench/run-peers.sh runs this layout.
# --idle N: after the rounds, N idle keep-alive connections (one GET / each) per proxy; RSS per connection.
# --workers N: every proxy with N workers (connect-proxy --threads N, nginx worker_processes N, HAProxy nbthread N)
#        and wrk with N threads, nothing pinned to one CPU: proxies, clients and peers share CPUs 0-(N-1). Default 1:
#        the proxy pinned to CPU 0, the rest to CPU 1. The report is results/KIND-workersN-<date>-<time>.md.
# --profile: after the rounds, each connect-proxy target under the keep-alive load with `perf record`; the
#        report lists the symbols with the largest share of the proxy's samples (e.g. before and after a change).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-http
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=bench/lib/idle.sh
. "$here/lib/idle.sh"

rounds=3
seconds=5          # per keepalive (wrk) and newconn sample
connections=50     # wrk's keep-alive connections
downloads=16       # GETs of 64 MiB per download sample, on one connection
pings=20000        # WebSocket round trips per sample
newconn_threads=4
targets="direct uring asio nginx haproxy"
workloads="keepalive newconn download ws"
baseline_dir=""
origin=upstream
idle=0             # idle keep-alive connections per proxy after the rounds (0: none)
profile=0          # 1: a perf profile of each connect-proxy target under the keep-alive load
stock_buffers=0    # 1: nginx and HAProxy with their stock buffer sizes instead of 64 KiB
build=1
install=1
quiet_wait=${QUIET_WAIT:-600}  # seconds, in all, that the run may wait for the shared machine to go quiet
quiet_pct=5                    # "quiet": both bench CPUs at most this busy with other work
retry_pct=${RETRY_PCT:-5}      # a sample with more interference than this is measured again (101: never)
workers=1
quiet_cpus="0 1"
host=api.localhost

while [ $# -gt 0 ]; do
  case "$1" in
    -r|--rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --downloads) downloads=$2; shift 2 ;;
    --pings) pings=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --stock-buffers) stock_buffers=1; shift ;;
    --baseline) baseline_dir=$2; shift 2 ;;
    --origin) origin=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    --workers) workers=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage ;;
    *) echo "run-http: unknown option $1" >&2; usage ;;
  esac
done
check_counts "$rounds" "$seconds" "$connections" "$downloads" "$pings"
check_words target "$targets" "direct uring asio nginx haproxy uring-base asio-base"
if [[ " $targets " == *"-base "* ]] && [ ! -x "$baseline_dir/src/app/connect" ]; then
  echo "run-http: the targets uring-base and asio-base need --baseline DIR with DIR/src/app/connect" >&2
  exit 2
fi
check_words workload "$workloads" "keepalive newconn download ws"
check_words origin "$origin" "upstream nginx"
[ "$idle" = 0 ] || check_counts "$idle"
check_counts "$workers"
workers_layout "$workers"
[ "$origin" = upstream ] || bench=run-peers
idle_raise_fd_limit
idle_client_args=()

make_work_dir
chmod 755 "$work"  # nginx's workers run as nobody and own their temp directories in here

# --- Packages and programs ---------------------------------------------------------------------------
if [ "$install" = 1 ]; then
  "$src_dir/toolchains/setup-deps.sh" bench >&2
fi

peers="connect-http-upstream connect-http-download connect-http-newconn connect-http-ws"
build_note="not built by this run (--no-build)"
peer_dir=""
if [ "$build" = 1 ]; then
  if [ ! -f "$build_dir/build.ninja" ]; then
    nice -n 10 cmake -S "$src_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  # shellcheck disable=SC2086
  if nice -n 10 cmake --build "$build_dir" --target $peers >"$work/build-peers.log" 2>&1; then
    build_note="peers built with CMake in $build_dir"
  else
    # The peers need nothing but a C++20 compiler: a tree that does not configure right now (someone
    # mid-change in src/) must not stop the proxies being compared.
    echo "run-http: the CMake build of the peers failed; compiling them directly:" >&2
    tail -n 5 "$work/build-peers.log" | sed 's/^/  /' >&2
    peer_dir=$work/peers
    mkdir -p "$peer_dir"
    for p in upstream download newconn ws; do
      source_file=$here/http/${p}_client.cpp
      [ "$p" = upstream ] && source_file=$here/http/upstream.cpp
      nice -n 10 c++ -std=c++20 -O2 -pthread -o "$peer_dir/connect-http-$p" "$source_file" &
    done
    wait
    build_note="**the CMake build failed** ($(grep -m1 -E 'Error|error:' "$work/build-peers.log" | cut -c1-120));"
    build_note+=" peers compiled directly with c++ -O2"
  fi
  build_connect
fi
upstream_bin=$(find_bin connect-http-upstream)
download_bin=$(find_bin connect-http-download)
newconn_bin=$(find_bin connect-http-newconn)
ws_bin=$(find_bin connect-http-ws)
for b in "$upstream_bin" "$download_bin" "$newconn_bin" "$ws_bin"; do
  [ -n "$b" ] || { echo "run-http: bench peers not found under $build_dir" >&2; exit 1; }
done
connect_bin=$build_dir/src/app/connect
connect_note=$(built_note "$connect_bin")
if [[ " $workloads " == *" keepalive "* ]] && ! command -v wrk >/dev/null; then
  echo "run-http: wrk is not installed; dropping the keepalive workload" >&2
  workloads=${workloads//keepalive/}
fi

clk_tck=$(getconf CLK_TCK)

# --- Upstream and proxies ----------------------------------------------------------------------------
launch upstream "$peer_cpu" "$upstream_bin" --port 0
upstream_pid=$started_pid
upstream_port=$(listening_port upstream "$upstream_pid")
[ -n "$upstream_port" ] || { echo "run-http: the upstream did not start: $(cat "$work/upstream.err")" >&2; exit 1; }
# api_port answers GET / and GET /64m (Host api.localhost), ws_port the WebSocket echo (Host $ws_host).
api_port=$upstream_port
ws_port=$upstream_port
ws_host=$host
origin_pid=""
if [ "$origin" = nginx ]; then
  command -v nginx >/dev/null || { echo "run-http: --origin nginx needs nginx" >&2; exit 1; }
  # byte k of /64m is 'a' + (k mod 1 MiB) mod 26, as connect-http-download checks (bench/http/http_bench.hpp)
  python3 -c 'import sys
block = bytes(97 + (k % 26) for k in range(1 << 20))
sys.stdout.buffer.write(block * 64)' >"$work/64m"
  chmod 644 "$work/64m"
  free_port
  api_port=$free
  mkdir -p "$work/origin"
  cat >"$work/origin/nginx.conf" <<EOF
# nginx as the bench origin: 18 bytes for GET /, a 64 MiB file with sendfile for GET /64m.
worker_processes 1;
daemon off;
pid $work/origin/nginx.pid;
error_log $work/origin/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $work/origin/body;
  proxy_temp_path $work/origin/proxy;
  fastcgi_temp_path $work/origin/fastcgi;
  uwsgi_temp_path $work/origin/uwsgi;
  scgi_temp_path $work/origin/scgi;
  server {
    listen 127.0.0.1:$api_port;
    default_type text/plain;
    location = / { return 200 "hello from bench!\n"; }
    location = /64m { alias $work/64m; }
  }
}
EOF
  launch origin "$peer_cpu" nginx -p "$work/origin" -c "$work/origin/nginx.conf" -e "$work/origin/error.log"
  origin_pid=$started_pid
  wait_port "$origin_pid" "$api_port" ||
    { echo "run-http: the nginx origin did not start: $(cat "$work/origin.err")" >&2; exit 1; }
  # shellcheck disable=SC2207
  origin_workers=($(pgrep -P "$origin_pid" || true))
  pids+=("${origin_workers[@]}")
  side_pids=("$origin_pid" "${origin_workers[@]}")
  ws_host=ws.localhost
fi

buffers_note="nginx and HAProxy with 64 KiB proxy buffers (connect-proxy reads 64 KiB at a time)"
nginx_buffers="proxy_buffer_size 64k; proxy_buffers 8 64k; proxy_busy_buffers_size 128k;"
haproxy_buffers="tune.bufsize 65536"
if [ "$stock_buffers" = 1 ]; then
  buffers_note="nginx and HAProxy with their stock buffer sizes (--stock-buffers)"
  nginx_buffers=""
  haproxy_buffers=""
fi

write_nginx_conf() {  # DIR PORT
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<EOF
# nginx as a subdomain-routing reverse proxy for the HTTP bench: api.localhost -> the upstream.
worker_processes $workers;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $1/body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream api { server 127.0.0.1:$api_port; keepalive 64; }
  upstream ws { server 127.0.0.1:$ws_port; }
  server {
    listen 127.0.0.1:$2 default_server;
    return 404;
  }
  server {
    listen 127.0.0.1:$2;
    server_name api.localhost;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_max_temp_file_size 0;
      $nginx_buffers
    }
  }
  server {
    listen 127.0.0.1:$2;
    server_name ws.localhost;
    location / {
      proxy_pass http://ws;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
    }
  }
}
EOF
}

write_haproxy_cfg() {  # DIR PORT
  mkdir -p "$1"
  cat >"$1/haproxy.cfg" <<EOF
# HAProxy as a subdomain-routing reverse proxy for the HTTP bench: api.* -> the upstream. No log lines.
global
  nbthread $workers
  # maxconn: derived by HAProxy from the descriptor limit (it needs two per connection and refuses to
  # start when a set maxconn does not fit)
  $haproxy_buffers
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$2
  acl is_api hdr(host) -m beg api.
  acl is_ws hdr(host) -m beg ws.
  use_backend api if is_api
  use_backend ws if is_ws
backend api
  server upstream 127.0.0.1:$api_port
backend ws
  server upstream 127.0.0.1:$ws_port
EOF
}

declare -A port pid skip

# route_check PORT: the 18-byte answer for Host api.localhost, or a reason on stdout and status 1.
route_check() {
  local code
  code=$(curl -s -m 5 -o "$work/route.body" -w '%{http_code}' -H "Host: $host" "http://127.0.0.1:$1/") || true
  if [ "$code" = 200 ] && [ "$(cat "$work/route.body")" = "hello from bench!" ] &&
     [ "$(wc -c <"$work/route.body")" = 18 ]; then
    return 0
  fi
  echo "HTTP ${code:-no answer}: $(head -c 120 "$work/route.body" 2>/dev/null | tr '\n' ' ')"
  return 1
}

active=()
for t in $targets; do
  case "$t" in
    direct)
      port[$t]=$api_port
      ;;
    nginx)
      command -v nginx >/dev/null || { skip[$t]="nginx is not installed"; continue; }
      free_port
      write_nginx_conf "$work/nginx" "$free"
      launch nginx "$proxy_cpu" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log"
      port[$t]=$free; pid[$t]=$started_pid
      ;;
    haproxy)
      command -v haproxy >/dev/null || { skip[$t]="haproxy is not installed"; continue; }
      free_port
      write_haproxy_cfg "$work/haproxy" "$free"
      launch haproxy "$proxy_cpu" haproxy -f "$work/haproxy/haproxy.cfg" -db
      port[$t]=$free; pid[$t]=$started_pid
      ;;
    uring|asio|uring-base|asio-base)
      bin=$connect_bin
      [ "${t%-base}" != "$t" ] && bin=$baseline_dir/src/app/connect
      [ -x "$bin" ] || { skip[$t]="not yet routing: $bin is missing"; continue; }
      free_port
      printf '{"routes": [{"name": "api", "port": %s}, {"name": "ws", "port": %s}]}\n' "$api_port" "$ws_port" \
        >"$work/routes.json"
      # Each its own home (never the real one): one proxy runs per home, and a second one would refuse.
      mkdir -p "$work/home-$t"
      launch "$t" "$proxy_cpu" env PRIVATECONNECT_HOME="$work/home-$t" "$bin" proxy start --foreground --quiet --port "$free" --threads "$workers" --io "${t%-base}" \
        --config "$work/routes.json"
      port[$t]=$free; pid[$t]=$started_pid
      ;;
  esac
  if [ -n "${pid[$t]:-}" ] && ! wait_port "${pid[$t]}" "${port[$t]}"; then
    reason="did not start: $(tail -n 2 "$work/$t.err" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    if is_connect "$t"; then reason="not yet routing ($reason)"; fi
    skip[$t]=$reason
    stop "${pid[$t]}"
    unset "pid[$t]"
    continue
  fi
  if [ "$t" = nginx ]; then
    # shellcheck disable=SC2207
    nginx_workers=($(pgrep -P "${pid[$t]}" || true))
    pids+=("${nginx_workers[@]}")
  fi
  if ! reason=$(route_check "${port[$t]}"); then
    if is_connect "$t"; then skip[$t]="not yet routing ($reason)"; else skip[$t]="route check failed: $reason"; fi
    if [ -n "${pid[$t]:-}" ]; then
      # shellcheck disable=SC2046
      stop "${pid[$t]}" $(proxy_pids "$t" | tail -n +2)
      unset "pid[$t]"
    fi
    continue
  fi
  active+=("$t")
done
for t in $targets; do [ -n "${skip[$t]:-}" ] && echo "run-http: $t: ${skip[$t]}" >&2; done
[ ${#active[@]} -gt 0 ] || { echo "run-http: nothing to measure" >&2; exit 1; }

# --- Loads ---------------------------------------------------------------------------------------------
# load W PORT [SCALE]: one sample of workload W against PORT, the client pinned with the upstream. Sets
# value (req/s, GB/s or round trips/s), ops (requests, bytes or round trips), p50, p99 (us, "-" if none),
# errs. SCALE < 1 shortens it (the warm-up). Status 1 if the client failed.
load() {
  local w=$1 p=$2 scale=${3:-1} out=$work/load.out d n
  p50=-; p99=-; errs=0
  case "$w" in
    keepalive)
      d=$(awk -v s="$seconds" -v k="$scale" 'BEGIN { d = int(s * k); print d < 1 ? 1 : d }')
      timeout $((d + 60)) taskset -c "$peer_cpu" wrk -t"$workers" -c"$connections" -d"${d}s" --latency -H "Host: $host" \
        "http://127.0.0.1:$p/" >"$out" 2>>"$work/client.err" || return 1
      wrk_results "$out" "$p" || return 1
      [ -n "$value" ] && [ "${ops:-0}" -gt 0 ] || return 1
      ;;
    newconn)
      d=$(awk -v s="$seconds" -v k="$scale" 'BEGIN { print s * k }')
      timeout 120 taskset -c "$peer_cpu" "$newconn_bin" --port "$p" --host "$host" --threads "$newconn_threads" \
        --seconds "$d" >"$out" 2>>"$work/client.err" || return 1
      value=$(field rps "$(cat "$out")"); ops=$(field requests "$(cat "$out")")
      p50=$(field p50_us "$(cat "$out")"); p99=$(field p99_us "$(cat "$out")"); errs=$(field errors "$(cat "$out")")
      ;;
    download)
      n=$(awk -v s="$downloads" -v k="$scale" 'BEGIN { n = int(s * k); print n < 1 ? 1 : n }')
      timeout 300 taskset -c "$peer_cpu" "$download_bin" --port "$p" --host "$host" --reps "$n" \
        >"$out" 2>>"$work/client.err" || return 1
      value=$(field gbps "$(cat "$out")"); ops=$(field bytes "$(cat "$out")")
      ;;
    ws)
      n=$(awk -v s="$pings" -v k="$scale" 'BEGIN { n = int(s * k); print n < 1 ? 1 : n }')
      [ "$p" = "$api_port" ] && p=$ws_port  # direct
      timeout 300 taskset -c "$peer_cpu" "$ws_bin" --port "$p" --host "$ws_host" --pings "$n" \
        >"$out" 2>>"$work/client.err" || return 1
      value=$(field rtps "$(cat "$out")"); ops=$(field round_trips "$(cat "$out")")
      p50=$(field p50_us "$(cat "$out")"); p99=$(field p99_us "$(cat "$out")")
      ;;
  esac
  [ -n "$value" ] && [ -n "$ops" ]
}

# Warm-up, not recorded: first connections, upstream keep-alive pools, page faults. A (workload, target)
# that fails here is left out of the rounds.
warm_up

start_quiet
started=$(date +%s)
run_rounds  # the samples, in $samples
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Idle keep-alive connections (--idle N), one proxy at a time (bench/lib/idle.sh).
idle_run

# Where a connect-proxy target's CPU goes under the keep-alive load: the symbols with the most samples (self),
# kernel included, as a share of the proxy's samples.
declare -A profile_top
profile_measure() {
  local t=$1 data=$work/perf-$1.data
  timeout $((seconds + 60)) perf record -q -g -F 999 -o "$data" -p "${pid[$t]}" -- sleep "$seconds" \
    2>>"$work/perf.err" &
  local rec=$!
  sleep 0.2  # perf attaches before the load starts
  load keepalive "${port[$t]}" >/dev/null 2>&1 || true
  wait "$rec" || true
  profile_top[$t]=$(perf report --stdio -q -i "$data" --no-children -g none --sort dso,symbol --percent-limit 1.5 \
    2>>"$work/perf.err" | awk '$1 ~ /%$/ { share = $1; $1 = ""; sub(/^ +/, ""); sub(/( +-)* *$/, ""); print "| " share " | " $0 " |" }' |
    head -n 25)
}
if [ "$profile" = 1 ]; then
  if command -v perf >/dev/null; then
    for t in "${active[@]}"; do
      is_connect "$t" || continue
      profile_measure "$t"
      echo "profiled $t" >&2
    done
  else
    echo "run-http: perf is not installed; no profile" >&2
  fi
fi

stop_proxies
stop "$upstream_pid"
upstream_status=$stopped
origin_status=""
if [ -n "$origin_pid" ]; then
  stop "$origin_pid" "${origin_workers[@]}"
  origin_status=$stopped
fi

# --- Report --------------------------------------------------------------------------------------------
report=$(new_report "$( [ "$origin" = nginx ] && echo peers || echo http)$( [ "$workers" = 1 ] || echo "-workers$workers")")

# table W TITLE UNIT_DIV PER FORMAT LATENCY: the markdown table of workload W. UNIT_DIV turns ops into the
# unit CPU is charged per (1 for requests and round trips, 1e6 for bytes -> MB).
table() {
  local w=$1 title=$2 div=$3 per=$4 fmt=$5 lat=$6 t direct_median nginx_median haproxy_median
  direct_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "direct" {print $4}' "$samples" | median)
  nginx_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "nginx" {print $4}' "$samples" | median)
  haproxy_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "haproxy" {print $4}' "$samples" | median)
  if [ "$lat" = 1 ]; then
    echo "| target | $title median | min-max | vs direct | vs nginx | vs HAProxy | p50 us | p99 us | proxy CPU us/$per | + softirq us/$per | proxy RSS MiB | errors | other work % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  else
    echo "| target | $title median | min-max | vs direct | vs nginx | vs HAProxy | proxy CPU us/$per | + softirq us/$per | proxy RSS MiB | errors | other work % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  fi
  for t in $targets; do
    local blank="| | | | | | | | | |"                    # the 9 cells after the value
    [ "$lat" = 1 ] && blank="| | | | | | | | | | | |"    # 11 with the latency columns
    if [ -n "${skip[$t]:-}" ]; then
      case "${skip[$t]}" in "not yet routing"*) echo "| $t | not yet routing $blank" ;; *) echo "| $t | not run $blank" ;; esac
      continue
    fi
    if [ -n "${broken[$w/$t]:-}" ]; then
      echo "| $t | failed: $(sed 's/^failed its warm-up: //; s/^connect-http-[a-z]*: //; s/|/\\|/g' <<<"${broken[$w/$t]}" | cut -c1-60) $blank"
      continue
    fi
    awk -F'\t' -v w="$w" -v t="$t" '$1 == w && $2 == t' "$samples" >"$work/sel.tsv" || true
    [ -s "$work/sel.tsv" ] || { echo "| $t | failed $blank"; continue; }
    awk -F'\t' -v t="$t" -v tck="$clk_tck" -v direct="${direct_median:-}" -v div="$div" -v fmt="$fmt" -v lat="$lat" \
      -v ngx="${nginx_median:-}" -v hap="${haproxy_median:-}" "$awk_median"'
      { n++; v[n] = $4; ops += $5; p50[n] = $6; p99[n] = $7; errs += $8; ticks += $9; busy += $10; oth[n] = $11; rss = $12 }
      END {
        mn = v[1]; mx = v[1]
        for (i = 1; i <= n; i++) { if (v[i] < mn) mn = v[i]; if (v[i] > mx) mx = v[i] }
        m = median(v, n)
        ratio = (direct != "" && direct > 0) ? sprintf("%.2f", m / direct) : "-"
        rn = (ngx != "" && ngx > 0) ? sprintf("%.2f", m / ngx) : "-"
        rh = (hap != "" && hap > 0) ? sprintf("%.2f", m / hap) : "-"
        units = ops / div
        cpu = (t == "direct" || units <= 0) ? "-" : sprintf("%.2f", ticks / tck * 1e6 / units)
        all = (t == "direct" || units <= 0) ? "-" : sprintf("%.2f", busy / tck * 1e6 / units)
        mem = (t == "direct") ? "-" : sprintf("%.1f", rss / 1024)
        printf "| %s | " fmt " | " fmt "-" fmt " | %s | %s | %s | ", t, m, mn, mx, ratio, rn, rh
        if (lat == 1) printf "%.0f | %.0f | ", median(p50, n), median(p99, n)
        printf "%s | %s | %s | %d | %.0f |\n", cpu, all, mem, errs, median(oth, n)
      }' "$work/sel.tsv"
  done
}

{
  if [ "$origin" = nginx ]; then
    echo "# HTTP benchmark beside nginx and HAProxy, nginx origin, $(date -u '+%Y-%m-%d %H:%M UTC')"
  else
    echo "# HTTP benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  fi
  echo
  host_line
  echo "- source: $(source_commit), build: $build_dir ($(build_type)); $build_note"
  [ -n "$baseline_dir" ] && echo "- baseline (uring-base, asio-base): $(built_note "$baseline_dir/src/app/connect")"
  echo "- connect-proxy: $connect_note; \`connect proxy start --foreground --quiet --threads $workers --io uring|asio --config FILE\`"
  echo "- nginx $(version_of nginx-light) ($workers worker(s), upstream keepalive 64, no access log), HAProxy $(version_of haproxy)" \
    "(nbthread $workers, http-reuse always, no log), wrk $(version_of wrk); $buffers_note; configs below"
  if [ "$workers" = 1 ]; then
    layout="proxies pinned to CPU $proxy_cpu; the load generator and the $( [ "$origin" = nginx ] && echo origins ||
      echo upstream) pinned to CPU $peer_cpu"
  else
    layout="**$workers workers per proxy, nothing pinned to one CPU**: the proxies, the load generator (wrk"
    layout+=" -t$workers) and the $( [ "$origin" = nginx ] && echo origins || echo upstream) all share CPUs $proxy_cpu"
    layout+=" (taskset -c $proxy_cpu), so a proxy competes with its load for the cores"
  fi
  if [ "$origin" = nginx ]; then
    echo "- $layout: nginx $(version_of nginx-light) (1 worker, no access log) answers GET / (\`return 200\`, 18" \
      "bytes) and GET /64m (a 64 MiB file, sendfile) for Host: $host; connect-http-upstream (epoll, one thread)" \
      "echoes WebSocket frames for Host: $ws_host"
  else
    echo "- $layout; the upstream is connect-http-upstream (epoll, one thread); every request carries Host: $host"
  fi
  echo "- $rounds rounds, interleaved (per round: each workload, targets in a rotated order), ${elapsed}s of measuring;" \
    "a warm-up pass per workload and target first, not recorded"
  quiet_line
  for w in $workloads; do
    echo
    case "$w" in
      keepalive)
        echo "## Keep-alive: 18-byte responses over $connections connections (wrk -t$workers -c$connections -d${seconds}s)"
        echo
        table keepalive "req/s" 1 req "%.0f" 1 ;;
      newconn)
        echo "## New connection per request: connect, GET / (Connection: close), read to EOF; $newconn_threads client threads, ${seconds}s"
        echo
        table newconn "req/s" 1 req "%.0f" 1 ;;
      download)
        echo "## Download: one keep-alive connection, $downloads x GET /64m (64 MiB) per sample, read 1 MiB at a time"
        echo
        table download "GB/s" 1e6 MB "%.2f" 0 ;;
      ws)
        echo "## WebSocket echo: $pings round trips of a 32-byte text frame on one connection, TCP_NODELAY"
        echo
        table ws "round trips/s" 1 "round trip" "%.0f" 1 ;;
    esac
  done
  echo
  echo "Medians and min-max are over rounds; vs direct = median / direct's median. Latency columns are medians"
  echo "of the per-round p50/p99 (wrk's for keep-alive, connect to EOF for a new connection, one round trip for"
  echo "WebSocket). Proxy CPU = utime+stime of the proxy's processes (/proc/PID/stat, $clk_tck ticks/s; nginx: master"
  echo "and worker) over all samples of the workload, per request, per MB (1e6 bytes of body) or per round trip."
  echo "+ softirq = the proxy's CPU plus the irq and softirq time of CPU $proxy_cpu (/proc/stat): loopback receive work for"
  echo "what the proxy sends runs there and is charged to no task. Proxy RSS = VmRSS (/proc/PID/status; nginx: master +"
  echo "worker) after the workload's last sample. Errors = failed requests summed over rounds (wrk socket errors; new-connection"
  echo "client failures). Other work = median share of a bench CPU the target uses (user+nice+system+steal) that"
  echo "went to anything but the proxy, the upstream and the client; above ${retry_pct}% a sample is measured again."
  echo "Direct is the limit for keep-alive and download. For a new connection per request it is not: behind a"
  echo "proxy the upstream serves the proxy's kept-alive connections, so CPU $peer_cpu accepts and closes nothing for it and"
  echo "a ratio near 1 means the client's CPU is the bottleneck; read the CPU columns. A WebSocket round trip through"
  echo "any proxy pays four cross-CPU wake-ups, which dominate in a VM (see the relay bench); read the CPU columns too."
  echo "vs nginx, vs HAProxy = median / that proxy's median in the same run."
  echo "Bench figures are reported, never asserted in tests."
  idle_report plain
  [ "$failures" = 0 ] || echo "**$failures sample(s) failed**; see the client errors below."
  if [ "$profile" = 1 ]; then
    for t in "${active[@]}"; do
      [ -n "${profile_top[$t]:-}" ] || continue
      echo
      echo "## Profile of $t under the keep-alive load (perf record -g -F 999, $seconds s; self samples >= 1.5%)"
      echo
      echo "| share | object, symbol |"
      echo "|---:|---|"
      echo "${profile_top[$t]}"
    done
  fi
  echo
  echo "## Notes"
  echo
  for t in $targets; do
    if [ -n "${skip[$t]:-}" ]; then echo "- $t: ${skip[$t]}"; continue; fi
    [ -n "${pid[$t]:-}" ] || continue
    echo "- $t (${exit_status[$t]:-?}; peak RSS ${peak[$t]:-?} MiB):"
    case "$t" in
      nginx) [ -s "$work/nginx/error.log" ] && tail -n 5 "$work/nginx/error.log" | sed 's/^/  - /' ;;
      *) tail -n 5 "$work/$t.err" | sed 's/^/  - /' ;;
    esac
  done
  for key in "${!broken[@]}"; do echo "- $key: ${broken[$key]}"; done
  [ -n "$origin_status" ] && echo "- nginx origin ($origin_status on SIGTERM)"
  echo "- upstream ($upstream_status on SIGTERM):"
  tail -n 3 "$work/upstream.err" | sed 's/^/  - /'
  proxy_configs
  if [ -f "$work/origin/nginx.conf" ]; then
    echo
    echo '```nginx'
    cat "$work/origin/nginx.conf"
    echo '```'
  fi
  echo
  echo "Samples (workload target round value ops p50-us p99-us errors proxy-ticks proxy+softirq-ticks other-% rss-KiB):"
  echo
  samples_block "$samples" "$work/client.err"
} >"$report"

awk '/^## Notes/ {exit} /^## / {p = 1} p' "$report"
echo "saved $report" >&2
