#!/usr/bin/env bash
# HTTPS benchmark: full TLS handshakes, HTTPS requests on a new connection each, and keep-alive HTTPS requests
# through connect-proxy (uring, asio), nginx and HAProxy, all serving the same ECDSA P-256 certificate,
# measured in one run, interleaved, saved to bench/results/https-<date>-<time>.md.
# Usage: bench/run-https.sh [-r ROUNDS] [--seconds S] [--connections N] [--handshake-clients N]
#        [--targets "LIST"] [--workloads "LIST"] [--no-build] [--no-install]
#        (env: BUILD_DIR, default build/ in the source tree; QUIET_WAIT, default 600 s)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}

rounds=3
seconds=5           # per sample
connections=50      # wrk's connections (newconn, keepalive)
handshake_clients=4 # parallel `openssl s_time -new` processes (handshake)
targets="uring asio nginx haproxy"
workloads="handshake newconn keepalive"
build=1
install=1
quiet_wait=${QUIET_WAIT:-600}  # seconds, in all, that the run may wait for the shared machine to go quiet
quiet_pct=5                    # "quiet": both bench CPUs at most this busy with other work
retry_pct=5                    # a sample with more interference than this is measured again
proxy_cpu=0
peer_cpu=1
host=api.localhost   # the Host header: the route
sni=localhost        # the URL's host, so wrk's SNI: resolvable, and a name on the start-up certificate

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -r|--rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --handshake-clients) handshake_clients=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage ;;
    *) echo "run-https: unknown option $1" >&2; usage ;;
  esac
done
for n in "$rounds" "$seconds" "$connections" "$handshake_clients"; do
  [[ "$n" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "run-https: '$n' is not a count" >&2; exit 2; }
done
for t in $targets; do
  case "$t" in uring|asio|nginx|haproxy) ;; *) echo "run-https: unknown target $t" >&2; exit 2 ;; esac
done
for w in $workloads; do
  case "$w" in handshake|newconn|keepalive) ;; *) echo "run-https: unknown workload $w" >&2; exit 2 ;; esac
done

work=$(mktemp -d /tmp/run-https.XXXXXX)
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
for p in wrk openssl curl; do
  command -v "$p" >/dev/null || { echo "run-https: $p is not installed (toolchains/setup-deps.sh bench)" >&2; exit 1; }
done

build_note="not built by this run (--no-build)"
peer_dir=""
if [ "$build" = 1 ]; then
  if [ ! -f "$build_dir/build.ninja" ]; then
    nice -n 10 cmake -S "$src_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2 || true
  fi
  if nice -n 10 cmake --build "$build_dir" --target connect-http-upstream >"$work/build-peers.log" 2>&1; then
    build_note="upstream built with CMake in $build_dir"
  else
    # The upstream needs nothing but a C++20 compiler: a tree that does not configure right now (someone
    # mid-change in src/) must not stop the proxies being compared.
    echo "run-https: the CMake build of the upstream failed; compiling it directly" >&2
    peer_dir=$work/peers
    mkdir -p "$peer_dir"
    nice -n 10 c++ -std=c++20 -O2 -pthread -o "$peer_dir/connect-http-upstream" "$here/http/upstream.cpp"
    build_note="**the CMake build failed** ($(grep -m1 -E 'Error|error:' "$work/build-peers.log" | cut -c1-120));"
    build_note+=" upstream compiled directly with c++ -O2"
  fi
  if [[ " $targets " == *" uring "* || " $targets " == *" asio "* ]]; then
    if nice -n 10 cmake --build "$build_dir" --target connect >"$work/build-connect.log" 2>&1; then
      build_note+="; connect built"
    else
      echo "run-https: connect did not build; using the binary already in $build_dir, if any" >&2
      build_note+="; **connect did not build**, the binary already there was used"
    fi
  fi
fi
upstream_bin=""
[ -n "$peer_dir" ] && upstream_bin=$peer_dir/connect-http-upstream
[ -n "$upstream_bin" ] || upstream_bin=$(find "$build_dir" -name connect-http-upstream -type f -perm -u+x 2>/dev/null | head -n1)
[ -n "$upstream_bin" ] || { echo "run-https: connect-http-upstream not found under $build_dir" >&2; exit 1; }
connect_bin=$build_dir/src/app/connect
connect_note="$connect_bin: $( [ -x "$connect_bin" ] && date -u -r "$connect_bin" '+built %Y-%m-%d %H:%M UTC' || echo 'missing')"

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
  echo "run-https: no free port found" >&2
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

# --- Upstream ------------------------------------------------------------------------------------------
launch upstream "$peer_cpu" "$upstream_bin" --port 0
upstream_pid=$started_pid
for _ in $(seq 100); do
  grep -qs '^listening ' "$work/upstream.out" && break
  kill -0 "$upstream_pid" 2>/dev/null || break
  sleep 0.1
done
upstream_port=$(awk '/^listening /{print $2; exit}' "$work/upstream.out")
[ -n "$upstream_port" ] || { echo "run-https: the upstream did not start: $(cat "$work/upstream.err")" >&2; exit 1; }

# --- Proxies and the certificate -----------------------------------------------------------------------
# connect-proxy makes its CA and certs/server.crt (ECDSA P-256, for localhost, 127.0.0.1, ::1 and the routes)
# at its first --https start; nginx and HAProxy then serve that very pair. Without a connect that serves
# HTTPS, openssl makes an equivalent CA and leaf so nginx and HAProxy can still be measured.
cert_dir=$work/certs
mkdir -p "$cert_dir"
cert_note=""
make_openssl_cert() {
  local d=$cert_dir
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$d/ca.key" -subj "/CN=run-https bench CA" -days 30 -out "$d/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/server.key" 2>/dev/null
  openssl req -new -key "$d/server.key" -subj "/CN=localhost" -out "$d/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,DNS:$host" >"$d/leaf.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/leaf.ext" -out "$d/server.crt" 2>/dev/null
}

write_nginx_conf() {  # DIR PORT
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<EOF
# nginx as an HTTPS subdomain-routing reverse proxy for the HTTPS bench: api.localhost -> the upstream.
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
  ssl_certificate $cert_dir/server.crt;
  ssl_certificate_key $cert_dir/server.key;
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream api { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$2 ssl default_server;
    return 404;
  }
  server {
    listen 127.0.0.1:$2 ssl;
    server_name api.localhost;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Connection "";
      proxy_buffer_size 64k; proxy_buffers 8 64k; proxy_busy_buffers_size 128k;
    }
  }
}
EOF
}

write_haproxy_cfg() {  # DIR PORT
  mkdir -p "$1"
  cat "$cert_dir/server.crt" "$cert_dir/server.key" >"$1/server.pem"
  cat >"$1/haproxy.cfg" <<EOF
# HAProxy as an HTTPS subdomain-routing reverse proxy for the HTTPS bench: api.* -> the upstream. No log.
global
  nbthread 1
  maxconn 4096
  tune.bufsize 65536
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$2 ssl crt $1/server.pem alpn http/1.1
  acl is_api hdr(host) -m beg api.
  use_backend api if is_api
backend api
  server upstream 127.0.0.1:$upstream_port
EOF
}

# proxy_pids T: the processes whose CPU time and memory count for target T (nginx: master + workers).
declare -A port pid skip probe
proxy_pids() {
  local p=${pid[$1]:-}
  [ -n "$p" ] || return 0
  echo "$p"
  if [ "$1" = nginx ]; then pgrep -P "$p" || true; fi
}
is_connect() { [ "$1" = uring ] || [ "$1" = asio ]; }

# route_check PORT: the 18-byte answer for Host api.localhost over TLS, the chain checked against the CA,
# or a reason on stdout and status 1.
route_check() {
  local code
  code=$(curl -s -m 5 --cacert "$cert_dir/ca.crt" -o "$work/route.body" -w '%{http_code}' -H "Host: $host" \
    "https://$sni:$1/" 2>"$work/route.err") || true
  if [ "$code" = 200 ] && [ "$(cat "$work/route.body")" = "hello from bench!" ] &&
     [ "$(wc -c <"$work/route.body")" = 18 ]; then
    return 0
  fi
  echo "HTTPS ${code:-no answer}: $(head -c 120 "$work/route.body" 2>/dev/null | tr '\n' ' ')$(head -c 200 "$work/route.err")"
  return 1
}

# tls_probe PORT: what a fresh handshake with SNI $sni negotiates (protocol, cipher, key exchange, server
# signature, leaf fingerprint), and how many of 3 second connections offering the first one's session
# resumed it.
tls_probe() {
  local out request proto cipher kex sig fp reused=0
  # A whole request, so TLS 1.3 session tickets (sent after the handshake) arrive before the server closes.
  request=$(printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host")
  for _ in 1 2 3; do
    rm -f "$work/probe.sess"
    out=$(timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$sni" -sess_out "$work/probe.sess" \
          -ign_eof <<<"$request" 2>&1 || true)
    if [ -s "$work/probe.sess" ] &&
       timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$sni" -sess_in "$work/probe.sess" \
         -ign_eof <<<"$request" 2>&1 | grep -q '^Reused, '; then
      reused=$((reused + 1))
    fi
  done
  rm -f "$work/probe.sess"
  proto=$(awk -F': *' '/^ *Protocol *:/{print $2; exit}' <<<"$out")
  cipher=$(awk '/^New, /{print $NF; exit}' <<<"$out")
  kex=$(awk -F': ' '/^(Server|Peer) Temp Key/{print $2; exit}' <<<"$out")
  sig=$(awk -F': ' '/^Peer signature type/{print $2; exit}' <<<"$out")
  fp=$(openssl x509 -noout -fingerprint -sha256 <<<"$out" 2>/dev/null | sed 's/.*=//' | cut -c1-23)
  echo "$proto, $cipher, $kex, signature $sig, leaf SHA-256 ${fp}..., session resumed on reconnect: $reused of 3"
}

active=()
# connect first: its first --https start makes the certificate everyone serves.
ordered=""
for t in $targets; do is_connect "$t" && ordered+=" $t"; done
for t in $targets; do is_connect "$t" || ordered+=" $t"; done
for t in $ordered; do
  case "$t" in
    nginx)
      [ -s "$cert_dir/server.crt" ] || { make_openssl_cert; cert_note="made with openssl (no connect-proxy served HTTPS)"; }
      command -v nginx >/dev/null || { skip[$t]="nginx is not installed"; continue; }
      free_port
      write_nginx_conf "$work/nginx" "$free"
      launch nginx "$proxy_cpu" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log"
      port[$t]=$free; pid[$t]=$started_pid
      ;;
    haproxy)
      [ -s "$cert_dir/server.crt" ] || { make_openssl_cert; cert_note="made with openssl (no connect-proxy served HTTPS)"; }
      command -v haproxy >/dev/null || { skip[$t]="haproxy is not installed"; continue; }
      free_port
      write_haproxy_cfg "$work/haproxy" "$free"
      launch haproxy "$proxy_cpu" haproxy -f "$work/haproxy/haproxy.cfg" -db
      port[$t]=$free; pid[$t]=$started_pid
      ;;
    uring|asio)
      [ -x "$connect_bin" ] || { skip[$t]="not yet serving HTTPS: $connect_bin is missing"; continue; }
      free_port
      home=$work/connect-$t
      mkdir -p "$home"
      if [ -s "$cert_dir/server.crt" ]; then
        # The CA of the first connect start, so the second one's start-up certificate comes from it too.
        mkdir -p "$home/certs"; chmod 700 "$home/certs"
        cp -p "$cert_dir/ca.crt" "$cert_dir/ca.key" "$cert_dir/server.crt" "$cert_dir/server.key" "$home/certs/"
      fi
      printf '{"routes": [{"name": "api", "port": %s}]}\n' "$upstream_port" >"$work/routes.json"
      PRIVATECONNECT_HOME=$home launch "$t" "$proxy_cpu" "$connect_bin" proxy start --https --foreground --quiet \
        --port "$free" --threads 1 --io "$t" --config "$work/routes.json"
      port[$t]=$free; pid[$t]=$started_pid
      ;;
  esac
  if [ -n "${pid[$t]:-}" ] && ! wait_port "${pid[$t]}" "${port[$t]}"; then
    reason="did not start: $(tail -n 2 "$work/$t.err" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    if is_connect "$t"; then reason="not yet serving HTTPS ($reason)"; fi
    skip[$t]=$reason
    stop "${pid[$t]}"
    unset "pid[$t]"
    continue
  fi
  if is_connect "$t" && [ ! -s "$cert_dir/server.crt" ]; then
    if [ -s "$home/certs/server.crt" ] && [ -s "$home/certs/server.key" ]; then
      cp -p "$home/certs/ca.crt" "$home/certs/ca.key" "$home/certs/server.crt" "$home/certs/server.key" "$cert_dir/"
      cert_note="certs/server.crt and server.key of connect-proxy's first --https start (its CA: certs/ca.crt)"
    else
      skip[$t]="not yet serving HTTPS (no certs/server.crt in its PRIVATECONNECT_HOME after the start)"
      stop "${pid[$t]}"
      unset "pid[$t]"
      continue
    fi
  fi
  if [ "$t" = nginx ]; then
    # shellcheck disable=SC2207
    nginx_workers=($(pgrep -P "${pid[$t]}" || true))
    pids+=("${nginx_workers[@]}")
  fi
  if ! reason=$(route_check "${port[$t]}"); then
    if is_connect "$t"; then skip[$t]="not yet serving HTTPS ($reason)"; else skip[$t]="route check failed: $reason"; fi
    if [ -n "${pid[$t]:-}" ]; then
      # shellcheck disable=SC2046
      stop "${pid[$t]}" $(proxy_pids "$t" | tail -n +2)
      unset "pid[$t]"
    fi
    continue
  fi
  probe[$t]=$(tls_probe "${port[$t]}")
  active+=("$t")
done
for t in $targets; do [ -n "${skip[$t]:-}" ] && echo "run-https: $t: ${skip[$t]}" >&2; done
[ ${#active[@]} -gt 0 ] || { echo "run-https: nothing to measure" >&2; exit 1; }

# --- Loads ---------------------------------------------------------------------------------------------
# wrk prints latencies as 176.00us, 1.23ms, 1.00s: to microseconds.
wrk_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                                   else if (v ~ /m$/) print n * 60e6; else print n * 1e6 }'; }

# load W PORT [SCALE]: one sample of workload W against PORT, the client(s) pinned with the upstream. Sets
# value (handshakes/s or req/s), ops (handshakes or requests), p50, p99 (us, "-" if none), errs. SCALE < 1
# shortens it (the warm-up). Status 1 if the client failed.
load() {
  local w=$1 p=$2 scale=${3:-1} out=$work/load.out d close=() i
  p50=-; p99=-; errs=0
  d=$(awk -v s="$seconds" -v k="$scale" 'BEGIN { d = int(s * k); print d < 1 ? 1 : d }')
  if [ "$w" = handshake ]; then
    # openssl s_time -new: connect, a full handshake with a fresh SSL object (no session offered), close;
    # one connection at a time per process, so several processes run side by side.
    local clients=() c status=0
    for i in $(seq "$handshake_clients"); do
      timeout $((d + 60)) taskset -c "$peer_cpu" openssl s_time -connect "127.0.0.1:$p" -new -time "$d" \
        >"$out.$i" 2>>"$work/client.err" &
      clients+=($!)
    done
    for c in "${clients[@]}"; do wait "$c" || status=$?; done
    value=0; ops=0
    for i in $(seq "$handshake_clients"); do
      local got
      got=$(awk '/connections in .* real seconds/{print $1; exit}' "$out.$i")
      [ -n "$got" ] || { echo "s_time against $p: $(tr '\n' ' ' <"$out.$i" | cut -c1-160)" >>"$work/client.err"; return 1; }
      ops=$((ops + got))
    done
    [ "$status" = 0 ] || return 1
    value=$(awk -v n="$ops" -v d="$d" 'BEGIN { printf "%.1f", n / d }')
    [ "$ops" -gt 0 ]
    return
  fi
  [ "$w" = newconn ] && close=(-H "Connection: close")
  timeout $((d + 60)) taskset -c "$peer_cpu" wrk -t1 -c"$connections" -d"${d}s" --latency -H "Host: $host" \
    "${close[@]}" "https://$sni:$p/" >"$out" 2>>"$work/client.err" || return 1
  value=$(awk '/^Requests\/sec:/{print $2}' "$out")
  ops=$(awk '/ requests in /{print $1}' "$out")
  p50=$(wrk_us "$(awk '$1 == "50%"{print $2}' "$out")")
  p99=$(wrk_us "$(awk '$1 == "99%"{print $2}' "$out")")
  errs=$(awk '/^  Socket errors:/{gsub(/,/, ""); s += $4 + $6 + $8 + $10} /Non-2xx/{s += $NF} END{print s + 0}' "$out")
  if grep -q 'Non-2xx' "$out"; then
    echo "wrk against $p: $(grep 'Non-2xx' "$out")" >>"$work/client.err"
    return 1  # answers that are not the upstream's: not a proxied request
  fi
  [ -n "$value" ] && [ "${ops:-0}" -gt 0 ]
}

# The machine is shared: CPU time on the two bench CPUs that is not the proxy's, the upstream's or the
# client's is interference. cpu_busy N sums user+nice+system+steal of CPU N (irq and softirq left out:
# loopback TCP does its receive work there, charged to no task). The client's time comes from bash's
# `times`, read without a subshell.
cpu_busy() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $9}' /proc/stat; }
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
    [ $((quiet_waited % 30)) = 0 ] && echo "run-https: a bench CPU is ${pct}% busy with other work; waiting" >&2
    quiet_waited=$((quiet_waited + 1))
  done
  return 1
}

# measure W T: one sample. Sets what load() sets, plus proxy_ticks, cpu0_ticks, rss (KiB, after it) and
# other_pct: the larger share of a bench CPU that went to other work.
measure() {
  local w=$1 t=$2 pp r0=0 r1=0 s0 s1 c0 c1 a0 a1 b0 b1 t0 t1 k0 k1
  # shellcheck disable=SC2207
  pp=($(proxy_pids "$t"))
  children_ticks; c0=$(times_ticks)
  s0=$(cpu_ticks "$upstream_pid"); t0=$(now_ns)
  a0=$(cpu_busy "$proxy_cpu"); b0=$(cpu_busy "$peer_cpu")
  r0=$(cpu_ticks "${pp[@]}")
  k0=$(proxy_cpu_ticks)
  load "$w" "${port[$t]}" || return 1
  k1=$(proxy_cpu_ticks)
  r1=$(cpu_ticks "${pp[@]}")
  a1=$(cpu_busy "$proxy_cpu"); b1=$(cpu_busy "$peer_cpu")
  children_ticks; c1=$(times_ticks)
  s1=$(cpu_ticks "$upstream_pid"); t1=$(now_ns)
  proxy_ticks=$((r1 - r0))
  cpu0_ticks=$((r1 - r0 + k1 - k0))
  rss=$(rss_kib "${pp[@]}")
  local span=$(((t1 - t0) * clk_tck / 1000000000))
  [ "$span" -gt 0 ] || span=1
  local other_proxy=$(((a1 - a0 - (r1 - r0)) * 100 / span))
  local other_peer=$(((b1 - b0 - (s1 - s0) - (c1 - c0)) * 100 / span))
  other_pct=$((other_proxy > other_peer ? other_proxy : other_peer))
  [ "$other_pct" -ge 0 ] || other_pct=0
}

# Warm-up, not recorded. A (workload, target) that fails here is left out of the rounds.
declare -A broken
for w in $workloads; do
  for t in "${active[@]}"; do
    if ! load "$w" "${port[$t]}" 0.2; then
      broken[$w/$t]="failed its warm-up: $(tail -n 1 "$work/client.err" 2>/dev/null | cut -c1-160)"
      echo "run-https: $w $t ${broken[$w/$t]}; skipping it" >&2
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
          echo "run-https: round $r $w $t: client failed" >&2
          echo "round $r $w $t: client failed" >>"$work/client.err"
          failures=$((failures + 1))
          break
        fi
        ok=1
        [ "$other_pct" -le "$retry_pct" ] && break
        if [ "$attempt" -lt 3 ]; then
          echo "run-https: round $r $w $t: ${other_pct}% of the bench CPUs went to other work; again" >&2
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
report=$here/results/https-$stamp.md
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }

# table W TITLE PER: the markdown table of workload W, with ratios to nginx's median and CPU.
table() {
  local w=$1 title=$2 per=$3 t nginx_median
  nginx_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "nginx" {print $4}' "$samples" | sort -g |
    awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}')
  echo "| target | $title median | min-max | vs nginx | p50 us | p99 us | proxy CPU us/$per | + softirq us/$per | CPU vs nginx | proxy RSS MiB | errors | other work % |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  # nginx's CPU per request first, for the CPU ratio column.
  local nginx_cpu
  nginx_cpu=$(awk -F'\t' -v w="$w" -v tck="$clk_tck" '$1 == w && $2 == "nginx" {ops += $5; ticks += $9}
    END {if (ops > 0) printf "%.4f", ticks / tck * 1e6 / ops}' "$samples")
  for t in $targets; do
    local blank="| | | | | | | | | |"
    if [ -n "${skip[$t]:-}" ]; then
      case "${skip[$t]}" in "not yet serving HTTPS"*) echo "| $t | not yet serving HTTPS $blank" ;; *) echo "| $t | not run $blank" ;; esac
      continue
    fi
    if [ -n "${broken[$w/$t]:-}" ]; then
      echo "| $t | failed: $(sed 's/^failed its warm-up: //; s/|/\\|/g' <<<"${broken[$w/$t]}" | cut -c1-60) $blank"
      continue
    fi
    awk -F'\t' -v w="$w" -v t="$t" '$1 == w && $2 == t' "$samples" >"$work/sel.tsv" || true
    [ -s "$work/sel.tsv" ] || { echo "| $t | failed $blank"; continue; }
    awk -F'\t' -v t="$t" -v tck="$clk_tck" -v ref="${nginx_median:-}" -v refcpu="${nginx_cpu:-}" '
      function median(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      { n++; v[n] = $4; ops += $5; p50[n] = $6; p99[n] = $7; errs += $8; ticks += $9; busy += $10; oth[n] = $11; rss = $12 }
      END {
        mn = v[1]; mx = v[1]
        for (i = 1; i <= n; i++) { if (v[i] < mn) mn = v[i]; if (v[i] > mx) mx = v[i] }
        m = median(v, n)
        ratio = (ref != "" && ref > 0) ? sprintf("%.2f", m / ref) : "-"
        cpu = ops > 0 ? ticks / tck * 1e6 / ops : 0
        all = ops > 0 ? busy / tck * 1e6 / ops : 0
        cratio = (refcpu != "" && refcpu > 0) ? sprintf("%.2f", cpu / refcpu) : "-"
        l50 = (p50[1] == "-") ? "-" : sprintf("%.0f", median(p50, n))
        l99 = (p99[1] == "-") ? "-" : sprintf("%.0f", median(p99, n))
        printf "| %s | %.0f | %.0f-%.0f | %s | %s | %s | %.1f | %.1f | %s | %.1f | %d | %.0f |\n",
          t, m, mn, mx, ratio, l50, l99, cpu, all, cratio, rss / 1024, errs, median(oth, n)
      }' "$work/sel.tsv"
  done
}

{
  echo "# HTTPS benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- host: $(uname -sr), $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "- source: $(git -C "$src_dir" describe --always --dirty 2>/dev/null || echo 'no commit yet')," \
    "build: $build_dir ($(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$build_dir/CMakeCache.txt" 2>/dev/null)); $build_note"
  echo "- connect-proxy: $connect_note; \`connect proxy start --https --foreground --quiet --threads 1 --io uring|asio --config FILE\`"
  echo "- nginx $(version_of nginx-light) (1 worker, upstream keepalive 64, no access log), HAProxy $(version_of haproxy)" \
    "(nbthread 1, http-reuse always, no log), wrk $(version_of wrk), OpenSSL $(openssl version | awk '{print $2}'); configs below"
  echo "- certificate, the same for every target: $cert_note; ECDSA P-256; TLS 1.2 and 1.3 offered, ALPN http/1.1"
  echo "- session resumption: every server with its default (TLS 1.3 session tickets: nginx, HAProxy and connect-proxy" \
    "all issue them; see each target's probe below). \`openssl s_time -new\` never offers a session: full handshakes." \
    "wrk offers its connection's last session on each reconnect (it SSL_clear()s and reuses the SSL object): resumed" \
    "handshakes (PSK with ECDHE, no certificate) wherever the server resumes"
  echo "- proxies pinned to CPU $proxy_cpu; wrk and the upstream (connect-http-upstream: plain HTTP, epoll, one" \
    "thread) pinned to CPU $peer_cpu; URL https://$sni:PORT/ (SNI $sni), every request carries Host: $host"
  echo "- $rounds rounds, interleaved (per round: each workload, targets in a rotated order), ${elapsed}s of measuring;" \
    "a warm-up pass per workload and target first, not recorded"
  echo "- the machine is shared: $quiet_note; ${quiet_waited}s spent waiting for quiet;" \
    "load average before/after: $load_before / $load_after;" \
    "$retries sample(s) measured again because other work took more than ${retry_pct}% of the bench CPUs"
  for w in $workloads; do
    echo
    case "$w" in
      handshake)
        echo "## Full TLS 1.3 handshakes: $handshake_clients x \`openssl s_time -connect 127.0.0.1:PORT -new -time $seconds\`"
        echo
        echo "Each handshake is a TCP connect, a full TLS 1.3 handshake (X25519, ECDSA P-256 signature, no SNI: the"
        echo "start-up certificate), and the client's close; no HTTP request. Value: handshakes/s; CPU per handshake."
        echo
        table handshake "handshakes/s" handshake ;;
      newconn)
        echo "## HTTPS on a new connection per request (wrk -t1 -c$connections -d${seconds}s -H 'Connection: close')"
        echo
        echo "Each request is a TCP connect, a TLS 1.3 handshake (resumed where the server resumes: see the probes),"
        echo "one GET / (18-byte answer) proxied to the upstream on a kept-alive upstream connection, and the server's close."
        echo
        table newconn "req/s" req ;;
      keepalive)
        echo "## Keep-alive HTTPS: 18-byte responses over $connections connections (wrk -t1 -c$connections -d${seconds}s)"
        echo
        table keepalive "req/s" req ;;
    esac
  done
  echo
  echo "Medians and min-max are over rounds; vs nginx = median / nginx's median. Latency columns are medians of"
  echo "wrk's per-round p50/p99 (request to response; a new connection's handshake is not in them). Proxy CPU ="
  echo "utime+stime of the proxy's processes (/proc/PID/stat, $clk_tck ticks/s; nginx: master and worker) over all samples"
  echo "of the workload, per handshake or per request. + softirq = the proxy's CPU plus the irq and softirq time of"
  echo "CPU $proxy_cpu (/proc/stat). CPU vs nginx = proxy CPU per request / nginx's. Proxy RSS = VmRSS after the workload's"
  echo "last sample. Errors = wrk socket errors and non-2xx answers summed over rounds. Other work = median share of a"
  echo "bench CPU that went to anything but the proxy, the upstream and the clients; above ${retry_pct}% a sample is measured"
  echo "again. The clients' TLS work (wrk also polls while a handshake is in flight) shares CPU $peer_cpu with the upstream,"
  echo "so handshakes/s and req/s can be bounded by the client: read the CPU columns. Bench figures are reported, never"
  echo "asserted in tests."
  [ "$failures" = 0 ] || echo "**$failures sample(s) failed**; see the client errors below."
  echo
  echo "## Notes"
  echo
  for t in $targets; do
    if [ -n "${skip[$t]:-}" ]; then echo "- $t: ${skip[$t]}"; continue; fi
    [ -n "${pid[$t]:-}" ] || continue
    echo "- $t (${exit_status[$t]:-?}; peak RSS ${peak[$t]:-?} MiB): handshake probe (openssl s_client): ${probe[$t]:-?}"
    case "$t" in
      nginx) [ -s "$work/nginx/error.log" ] && tail -n 5 "$work/nginx/error.log" | sed 's/^/  - /' ;;
      *)
        if is_connect "$t"; then
          echo "  - its log: $(wc -l <"$work/$t.err") lines, $(grep -c 'TLS handshake' "$work/$t.err" || true) of them about a TLS handshake; the last ones:"
        fi
        tail -n 5 "$work/$t.err" | sed 's/^/  - /' ;;
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
  echo "Samples (workload target round req/s requests p50-us p99-us errors proxy-ticks proxy+softirq-ticks other-% rss-KiB):"
  echo
  echo '```'
  cat "$samples"
  [ -s "$work/client.err" ] && { echo; echo "client errors:"; tail -n 20 "$work/client.err"; }
  echo '```'
} >"$report"

awk '/^## Notes/ {exit} /^## / {p = 1} p' "$report"
echo "saved $report" >&2
