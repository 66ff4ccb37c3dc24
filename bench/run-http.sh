#!/usr/bin/env bash
# HTTP benchmark: the same loads against the upstream directly, connect-proxy (uring, asio), nginx and HAProxy,
# measured in one run, interleaved, saved to bench/results/http-<date>-<time>.md.
# Usage: bench/run-http.sh [-r ROUNDS] [--seconds S] [--connections N] [--downloads N] [--pings N]
#        [--targets "LIST"] [--workloads "LIST"] [--stock-buffers] [--no-build] [--no-install]
#        [--baseline DIR]
#        (env: BUILD_DIR, default build/ in the source tree; QUIET_WAIT, default 600 s)
# --baseline DIR: another build of connect-proxy (DIR/src/app/connect, e.g. of the commit before a change)
#        measured in the same run as the targets uring-base and asio-base, so a change is read as a ratio.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-http
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

rounds=3
seconds=5          # per keepalive (wrk) and newconn sample
connections=50     # wrk's keep-alive connections
downloads=16       # GETs of 64 MiB per download sample, on one connection
pings=20000        # WebSocket round trips per sample
newconn_threads=4
targets="direct uring asio nginx haproxy"
workloads="keepalive newconn download ws"
baseline_dir=""
stock_buffers=0    # 1: nginx and HAProxy with their stock buffer sizes instead of 64 KiB
build=1
install=1
quiet_wait=${QUIET_WAIT:-600}  # seconds, in all, that the run may wait for the shared machine to go quiet
quiet_pct=5                    # "quiet": both bench CPUs at most this busy with other work
retry_pct=5                    # a sample with more interference than this is measured again
proxy_cpu=0
peer_cpu=1
quiet_cpus="$proxy_cpu $peer_cpu"
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
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream api { server 127.0.0.1:$upstream_port; keepalive 64; }
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
}
EOF
}

write_haproxy_cfg() {  # DIR PORT
  mkdir -p "$1"
  cat >"$1/haproxy.cfg" <<EOF
# HAProxy as a subdomain-routing reverse proxy for the HTTP bench: api.* -> the upstream. No log lines.
global
  nbthread 1
  maxconn 4096
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
  use_backend api if is_api
backend api
  server upstream 127.0.0.1:$upstream_port
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
      port[$t]=$upstream_port
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
      printf '{"routes": [{"name": "api", "port": %s}]}\n' "$upstream_port" >"$work/routes.json"
      launch "$t" "$proxy_cpu" "$bin" proxy start --foreground --quiet --port "$free" --threads 1 --io "${t%-base}" \
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
      timeout $((d + 60)) taskset -c "$peer_cpu" wrk -t1 -c"$connections" -d"${d}s" --latency -H "Host: $host" \
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
      timeout 300 taskset -c "$peer_cpu" "$ws_bin" --port "$p" --host "$host" --pings "$n" \
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

stop_proxies
stop "$upstream_pid"
upstream_status=$stopped

# --- Report --------------------------------------------------------------------------------------------
report=$(new_report http)

# table W TITLE UNIT_DIV PER FORMAT LATENCY: the markdown table of workload W. UNIT_DIV turns ops into the
# unit CPU is charged per (1 for requests and round trips, 1e6 for bytes -> MB).
table() {
  local w=$1 title=$2 div=$3 per=$4 fmt=$5 lat=$6 t direct_median
  direct_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "direct" {print $4}' "$samples" | median)
  if [ "$lat" = 1 ]; then
    echo "| target | $title median | min-max | vs direct | p50 us | p99 us | proxy CPU us/$per | + softirq us/$per | proxy RSS MiB | errors | other work % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  else
    echo "| target | $title median | min-max | vs direct | proxy CPU us/$per | + softirq us/$per | proxy RSS MiB | errors | other work % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  fi
  for t in $targets; do
    local blank="| | | | | | | |"                    # the 7 cells after the value
    [ "$lat" = 1 ] && blank="| | | | | | | | | |"    # 9 with the latency columns
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
    awk -F'\t' -v t="$t" -v tck="$clk_tck" -v direct="${direct_median:-}" -v div="$div" -v fmt="$fmt" -v lat="$lat" "$awk_median"'
      { n++; v[n] = $4; ops += $5; p50[n] = $6; p99[n] = $7; errs += $8; ticks += $9; busy += $10; oth[n] = $11; rss = $12 }
      END {
        mn = v[1]; mx = v[1]
        for (i = 1; i <= n; i++) { if (v[i] < mn) mn = v[i]; if (v[i] > mx) mx = v[i] }
        m = median(v, n)
        ratio = (direct != "" && direct > 0) ? sprintf("%.2f", m / direct) : "-"
        units = ops / div
        cpu = (t == "direct" || units <= 0) ? "-" : sprintf("%.2f", ticks / tck * 1e6 / units)
        all = (t == "direct" || units <= 0) ? "-" : sprintf("%.2f", busy / tck * 1e6 / units)
        mem = (t == "direct") ? "-" : sprintf("%.1f", rss / 1024)
        printf "| %s | " fmt " | " fmt "-" fmt " | %s | ", t, m, mn, mx, ratio
        if (lat == 1) printf "%.0f | %.0f | ", median(p50, n), median(p99, n)
        printf "%s | %s | %s | %d | %.0f |\n", cpu, all, mem, errs, median(oth, n)
      }' "$work/sel.tsv"
  done
}

{
  echo "# HTTP benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  host_line
  echo "- source: $(source_commit), build: $build_dir ($(build_type)); $build_note"
  [ -n "$baseline_dir" ] && echo "- baseline (uring-base, asio-base): $(built_note "$baseline_dir/src/app/connect")"
  echo "- connect-proxy: $connect_note; \`connect proxy start --foreground --quiet --threads 1 --io uring|asio --config FILE\`"
  echo "- nginx $(version_of nginx-light) (1 worker, upstream keepalive 64, no access log), HAProxy $(version_of haproxy)" \
    "(nbthread 1, http-reuse always, no log), wrk $(version_of wrk); $buffers_note; configs below"
  echo "- proxies pinned to CPU $proxy_cpu; the load generator and the upstream (connect-http-upstream: epoll, one" \
    "thread) pinned to CPU $peer_cpu; every request carries Host: $host"
  echo "- $rounds rounds, interleaved (per round: each workload, targets in a rotated order), ${elapsed}s of measuring;" \
    "a warm-up pass per workload and target first, not recorded"
  quiet_line
  for w in $workloads; do
    echo
    case "$w" in
      keepalive)
        echo "## Keep-alive: 18-byte responses over $connections connections (wrk -t1 -c$connections -d${seconds}s)"
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
  echo "Bench figures are reported, never asserted in tests."
  [ "$failures" = 0 ] || echo "**$failures sample(s) failed**; see the client errors below."
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
  echo "- upstream ($upstream_status on SIGTERM):"
  tail -n 3 "$work/upstream.err" | sed 's/^/  - /'
  proxy_configs
  echo
  echo "Samples (workload target round value ops p50-us p99-us errors proxy-ticks proxy+softirq-ticks other-% rss-KiB):"
  echo
  samples_block "$samples" "$work/client.err"
} >"$report"

awk '/^## Notes/ {exit} /^## / {p = 1} p' "$report"
echo "saved $report" >&2
