#!/usr/bin/env bash
# HTTP benchmark: the same loads against the upstream directly, connect-proxy (uring, asio), nginx and HAProxy,
# measured in one run, interleaved, saved to bench/results/http-<date>-<time>.md.
# Usage: bench/run-http.sh [-r ROUNDS] [--seconds S] [--connections N] [--downloads N] [--pings N]
#        [--targets "LIST"] [--workloads "LIST"] [--stock-buffers] [--no-build] [--no-install]
#        (env: BUILD_DIR, default build/ in the source tree; QUIET_WAIT, default 600 s)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}

rounds=3
seconds=5          # per keepalive (wrk) and newconn sample
connections=50     # wrk's keep-alive connections
downloads=16       # GETs of 64 MiB per download sample, on one connection
pings=20000        # WebSocket round trips per sample
newconn_threads=4
targets="direct uring asio nginx haproxy"
workloads="keepalive newconn download ws"
stock_buffers=0    # 1: nginx and HAProxy with their stock buffer sizes instead of 64 KiB
build=1
install=1
quiet_wait=${QUIET_WAIT:-600}  # seconds, in all, that the run may wait for the shared machine to go quiet
quiet_pct=5                    # "quiet": both bench CPUs at most this busy with other work
retry_pct=5                    # a sample with more interference than this is measured again
proxy_cpu=0
peer_cpu=1
host=api.localhost

usage() { sed -n '2,6s/^# \{0,1\}//p' "$0" >&2; exit 2; }
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
    --no-build) build=0; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage ;;
    *) echo "run-http: unknown option $1" >&2; usage ;;
  esac
done
for n in "$rounds" "$seconds" "$connections" "$downloads" "$pings"; do
  [[ "$n" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "run-http: '$n' is not a count" >&2; exit 2; }
done
for t in $targets; do
  case "$t" in direct|uring|asio|nginx|haproxy) ;; *) echo "run-http: unknown target $t" >&2; exit 2 ;; esac
done
for w in $workloads; do
  case "$w" in keepalive|newconn|download|ws) ;; *) echo "run-http: unknown workload $w" >&2; exit 2 ;; esac
done

work=$(mktemp -d /tmp/run-http.XXXXXX)
chmod 755 "$work"  # nginx's workers run as nobody and own their temp directories in here
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
  if [[ " $targets " == *" uring "* || " $targets " == *" asio "* ]]; then
    if nice -n 10 cmake --build "$build_dir" --target connect >"$work/build-connect.log" 2>&1; then
      build_note+="; connect built"
    else
      echo "run-http: connect did not build; using the binary already in $build_dir, if any" >&2
      build_note+="; **connect did not build**, the binary already there was used"
    fi
  fi
fi
find_bin() {
  local b=""
  [ -n "$peer_dir" ] && [ -x "$peer_dir/$1" ] && b=$peer_dir/$1
  [ -n "$b" ] || b=$(find "$build_dir" -name "$1" -type f -perm -u+x 2>/dev/null | head -n1)
  echo "$b"
}
upstream_bin=$(find_bin connect-http-upstream)
download_bin=$(find_bin connect-http-download)
newconn_bin=$(find_bin connect-http-newconn)
ws_bin=$(find_bin connect-http-ws)
for b in "$upstream_bin" "$download_bin" "$newconn_bin" "$ws_bin"; do
  [ -n "$b" ] || { echo "run-http: bench peers not found under $build_dir" >&2; exit 1; }
done
connect_bin=$build_dir/src/app/connect
connect_note="$connect_bin: $( [ -x "$connect_bin" ] && date -u -r "$connect_bin" '+built %Y-%m-%d %H:%M UTC' || echo 'missing')"
if [[ " $workloads " == *" keepalive "* ]] && ! command -v wrk >/dev/null; then
  echo "run-http: wrk is not installed; dropping the keepalive workload" >&2
  workloads=${workloads//keepalive/}
fi

# --- Processes -----------------------------------------------------------------------------------------
# utime + stime of processes, in clock ticks (fields 14 and 15 of /proc/PID/stat; comm may hold spaces).
cpu_ticks() {
  local p v s=0
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
rss_kib() {
  local p v s=0
  for p in "$@"; do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null) || true
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
clk_tck=$(getconf CLK_TCK)

# free_port: sets $free to a loopback port nobody listens on, below the ephemeral range.
taken=" "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 10000))
    [[ "$taken" == *" $p "* ]] && continue
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
      taken+="$p "
      free=$p
      return 0
    fi
  done
  echo "run-http: no free port found" >&2
  return 1
}

# launch NAME CPU CMD...: runs CMD pinned to CPU, output to $work/NAME.out and .err; sets $started_pid.
launch() {
  local name=$1 cpu=$2
  shift 2
  taskset -c "$cpu" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  started_pid=$!
  pids+=("$started_pid")
}
# wait_port PID PORT: up to 10 s for PORT to accept a connection while PID lives.
wait_port() {
  local i
  for i in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}
# forget PID: the EXIT trap no longer signals it (it has exited; its number may be reused).
forget() {
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
# stop PID [CHILD...]: $stop_signal (SIGTERM unless set), up to 10 s to exit; sets $stopped to "exit N"
# or "still running after 10 s". CHILDren (nginx's workers) exit with it and are forgotten with it.
stop() {
  local status=0 c
  kill "-${stop_signal:-TERM}" "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then
    stopped="still running after 10 s"
  else
    wait "$1" 2>/dev/null || status=$?
    stopped="exit $status"
    forget "$1"
    for c in "${@:2}"; do
      for _ in $(seq 50); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$c" 2>/dev/null || forget "$c"
    done
  fi
}

# --- Upstream and proxies ----------------------------------------------------------------------------
launch upstream "$peer_cpu" "$upstream_bin" --port 0
upstream_pid=$started_pid
for _ in $(seq 100); do
  grep -qs '^listening ' "$work/upstream.out" && break
  kill -0 "$upstream_pid" 2>/dev/null || break
  sleep 0.1
done
upstream_port=$(awk '/^listening /{print $2; exit}' "$work/upstream.out")
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

# proxy_pids T: the processes whose CPU time and memory count for target T (nginx: master + workers).
declare -A port pid skip
proxy_pids() {
  local p=${pid[$1]:-}
  [ -n "$p" ] || return 0
  echo "$p"
  if [ "$1" = nginx ]; then pgrep -P "$p" || true; fi
}
is_connect() { [ "$1" = uring ] || [ "$1" = asio ]; }

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
    uring|asio)
      [ -x "$connect_bin" ] || { skip[$t]="not yet routing: $connect_bin is missing"; continue; }
      free_port
      printf '{"routes": [{"name": "api", "port": %s}]}\n' "$upstream_port" >"$work/routes.json"
      launch "$t" "$proxy_cpu" "$connect_bin" proxy start --foreground --quiet --port "$free" --threads 1 --io "$t" \
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
# wrk prints latencies as 176.00us, 1.23ms, 1.00s: to microseconds.
wrk_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                                   else if (v ~ /m$/) print n * 60e6; else print n * 1e6 }'; }
# field NAME LINE: the value after NAME in a "key value" line.
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}' <<<"$2"; }

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
      value=$(awk '/^Requests\/sec:/{print $2}' "$out")
      ops=$(awk '/ requests in /{print $1}' "$out")
      p50=$(wrk_us "$(awk '$1 == "50%"{print $2}' "$out")")
      p99=$(wrk_us "$(awk '$1 == "99%"{print $2}' "$out")")
      errs=$(awk '/^  Socket errors:/{gsub(/,/, ""); s += $4 + $6 + $8 + $10} /Non-2xx/{s += $NF} END{print s + 0}' "$out")
      if grep -q 'Non-2xx' "$out"; then
        echo "wrk against $p: $(grep 'Non-2xx' "$out")" >>"$work/client.err"
        return 1  # answers that are not the upstream's: not a proxied request
      fi
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

# The machine is shared: CPU time on the two bench CPUs that is not the proxy's, the upstream's or the
# client's is interference. cpu_busy N sums user+nice+system+steal of CPU N: irq and softirq time is
# left out because loopback TCP does its receive work there and the kernel does not charge it to any
# task (so it is mostly ours). The client's time comes from bash's `times`, read without a subshell.
cpu_busy() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $9}' /proc/stat; }
# irq + softirq time of the proxy's CPU: loopback TCP does the receive work for the bytes the proxy sends
# there, and the kernel charges it to no task. Added to the proxy's own time, it is the proxy's cost with
# the receive work included, and unlike all busy time of the CPU it leaves out other people's compiles.
proxy_cpu_ticks() { awk -v a="cpu$proxy_cpu" '$1 == a {print $7 + $8}' /proc/stat; }
children_ticks() { times >"$work/times"; }
times_ticks() {
  awk -v tck="$clk_tck" 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
    printf "%.0f\n", t * tck
  }' "$work/times"
}
now_ns() { date +%s%N; }
quiet_waited=0
wait_quiet() {
  local a0 a1 b0 b1 pct
  while [ "$quiet_waited" -lt "$quiet_wait" ]; do
    a0=$(cpu_busy "$proxy_cpu"); b0=$(cpu_busy "$peer_cpu"); sleep 1
    a1=$(cpu_busy "$proxy_cpu"); b1=$(cpu_busy "$peer_cpu")
    pct=$((((a1 - a0) > (b1 - b0) ? (a1 - a0) : (b1 - b0)) * 100 / clk_tck))
    [ "$pct" -le "$quiet_pct" ] && return 0
    [ $((quiet_waited % 30)) = 0 ] && echo "run-http: a bench CPU is ${pct}% busy with other work; waiting" >&2
    quiet_waited=$((quiet_waited + 1))
  done
  return 1
}

# measure W T: one sample. Sets what load() sets, plus proxy_ticks, cpu0_ticks, rss (KiB, after it) and
# other_pct: the larger share of a CPU the target uses that went to other work (direct leaves the proxy's
# CPU idle, and others may use it freely).
measure() {
  local w=$1 t=$2 pp r0=0 r1=0 s0 s1 c0 c1 a0 a1 b0 b1 t0 t1 k0 k1
  # shellcheck disable=SC2207
  pp=($(proxy_pids "$t"))
  children_ticks; c0=$(times_ticks)
  s0=$(cpu_ticks "$upstream_pid"); t0=$(now_ns)
  a0=$(cpu_busy "$proxy_cpu"); b0=$(cpu_busy "$peer_cpu")
  [ ${#pp[@]} -gt 0 ] && r0=$(cpu_ticks "${pp[@]}")
  k0=$(proxy_cpu_ticks)
  load "$w" "${port[$t]}" || return 1
  k1=$(proxy_cpu_ticks)
  [ ${#pp[@]} -gt 0 ] && r1=$(cpu_ticks "${pp[@]}")
  a1=$(cpu_busy "$proxy_cpu"); b1=$(cpu_busy "$peer_cpu")
  children_ticks; c1=$(times_ticks)
  s1=$(cpu_ticks "$upstream_pid"); t1=$(now_ns)
  proxy_ticks=$((r1 - r0))
  cpu0_ticks=$((r1 - r0 + k1 - k0))
  rss=0
  [ ${#pp[@]} -gt 0 ] && rss=$(rss_kib "${pp[@]}")
  local span=$(((t1 - t0) * clk_tck / 1000000000))
  [ "$span" -gt 0 ] || span=1
  local other_proxy=$(((a1 - a0 - (r1 - r0)) * 100 / span))
  local other_peer=$(((b1 - b0 - (s1 - s0) - (c1 - c0)) * 100 / span))
  [ ${#pp[@]} -gt 0 ] || other_proxy=0
  other_pct=$((other_proxy > other_peer ? other_proxy : other_peer))
  [ "$other_pct" -ge 0 ] || other_pct=0
}

# Warm-up, not recorded: first connections, upstream keep-alive pools, page faults. A (workload, target)
# that fails here is left out of the rounds.
declare -A broken
for w in $workloads; do
  for t in "${active[@]}"; do
    if ! load "$w" "${port[$t]}" 0.2; then
      broken[$w/$t]="failed its warm-up: $(tail -n 1 "$work/client.err" 2>/dev/null | cut -c1-160)"
      echo "run-http: $w $t ${broken[$w/$t]}; skipping it" >&2
    fi
  done
done

quiet_note="bench CPUs were quiet at the start"
wait_quiet || quiet_note="**bench CPUs were still busy with other work after ${quiet_wait}s of waiting**"
[ "$quiet_wait" -gt 0 ] || quiet_note="bench CPUs were not checked for other work (QUIET_WAIT=0)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
samples=$work/samples.tsv
: >"$samples"
failures=0
retries=0
n=${#active[@]}
for r in $(seq "$rounds"); do
  for w in $workloads; do
    # Round-robin, starting one target later each round so no target always runs first.
    for i in $(seq 0 $((n - 1))); do
      t=${active[$(((i + r) % n))]}
      [ -z "${broken[$w/$t]:-}" ] || continue
      ok=0
      for attempt in 1 2 3; do
        if ! measure "$w" "$t"; then
          echo "run-http: round $r $w $t: client failed" >&2
          echo "round $r $w $t: client failed" >>"$work/client.err"
          failures=$((failures + 1))
          break
        fi
        ok=1
        [ "$other_pct" -le "$retry_pct" ] && break
        if [ "$attempt" -lt 3 ]; then
          echo "run-http: round $r $w $t: ${other_pct}% of the bench CPUs went to other work; again" >&2
          retries=$((retries + 1))
          wait_quiet || true
        fi
      done
      [ "$ok" = 1 ] || continue
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$r" "$value" "$ops" "$p50" "$p99" \
        "$errs" "$proxy_ticks" "$cpu0_ticks" "$other_pct" "$rss" >>"$samples"
      echo "round $r/$rounds $w $t: $value, p50 $p50 us, p99 $p99 us, errors $errs, other work ${other_pct}%" >&2
    done
  done
done
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Stop the proxies and check that each exits within 10 s: SIGTERM, but SIGUSR1 for HAProxy, whose SIGTERM
# is a hard stop that exits 143.
declare -A exit_status peak
for t in "${active[@]}"; do
  [ -n "${pid[$t]:-}" ] || continue
  peak[$t]=$(for p in $(proxy_pids "$t"); do awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null; done |
    awk '{s += $1} END {printf "%.1f", s / 1024}')
  stop_signal=TERM
  [ "$t" = haproxy ] && stop_signal=USR1
  # shellcheck disable=SC2046
  stop "${pid[$t]}" $(proxy_pids "$t" | tail -n +2)
  stop_signal=TERM
  exit_status[$t]="$stopped on SIG$( [ "$t" = haproxy ] && echo USR1 || echo TERM)"
done
stop "$upstream_pid"
upstream_status=$stopped

# --- Report --------------------------------------------------------------------------------------------
stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$here/results"
report=$here/results/http-$stamp.md
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }

# table W TITLE UNIT_DIV PER FORMAT LATENCY: the markdown table of workload W. UNIT_DIV turns ops into the
# unit CPU is charged per (1 for requests and round trips, 1e6 for bytes -> MB).
table() {
  local w=$1 title=$2 div=$3 per=$4 fmt=$5 lat=$6 t direct_median
  direct_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "direct" {print $4}' "$samples" | sort -g |
    awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')
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
    awk -F'\t' -v t="$t" -v tck="$clk_tck" -v direct="${direct_median:-}" -v div="$div" -v fmt="$fmt" -v lat="$lat" '
      function median(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
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
  echo "- host: $(uname -sr), $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "- source: $(git -C "$src_dir" describe --always --dirty 2>/dev/null || echo 'no commit yet')," \
    "build: $build_dir ($(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$build_dir/CMakeCache.txt" 2>/dev/null)); $build_note"
  echo "- connect-proxy: $connect_note; \`connect proxy start --foreground --quiet --threads 1 --io uring|asio --config FILE\`"
  echo "- nginx $(version_of nginx-light) (1 worker, upstream keepalive 64, no access log), HAProxy $(version_of haproxy)" \
    "(nbthread 1, http-reuse always, no log), wrk $(version_of wrk); $buffers_note; configs below"
  echo "- proxies pinned to CPU $proxy_cpu; the load generator and the upstream (connect-http-upstream: epoll, one" \
    "thread) pinned to CPU $peer_cpu; every request carries Host: $host"
  echo "- $rounds rounds, interleaved (per round: each workload, targets in a rotated order), ${elapsed}s of measuring;" \
    "a warm-up pass per workload and target first, not recorded"
  echo "- the machine is shared: $quiet_note; ${quiet_waited}s spent waiting for quiet;" \
    "load average before/after: $load_before / $load_after;" \
    "$retries sample(s) measured again because other work took more than ${retry_pct}% of the bench CPUs"
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
  if [ -f "$work/nginx/nginx.conf" ]; then
    echo
    echo '```nginx'
    cat "$work/nginx/nginx.conf"
    echo '```'
  fi
  if [ -f "$work/haproxy/haproxy.cfg" ]; then
    echo
    echo '```'
    cat "$work/haproxy/haproxy.cfg"
    echo '```'
  fi
  if [ -f "$work/routes.json" ]; then
    echo
    echo "connect-proxy --config: \`$(cat "$work/routes.json")\`"
  fi
  echo
  echo "Samples (workload target round value ops p50-us p99-us errors proxy-ticks proxy+softirq-ticks other-% rss-KiB):"
  echo
  echo '```'
  cat "$samples"
  [ -s "$work/client.err" ] && { echo; echo "client errors:"; tail -n 20 "$work/client.err"; }
  echo '```'
} >"$report"

awk '/^## Notes/ {exit} /^## / {p = 1} p' "$report"
echo "saved $report" >&2
