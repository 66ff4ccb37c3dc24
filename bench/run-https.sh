#!/usr/bin/env bash
# HTTPS benchmark: full TLS handshakes, HTTPS requests on a new connection each, keep-alive HTTPS requests and
# HTTP/2 over TLS (h2load -c 10 -m 100; `--workloads h2` alone for it) through connect-proxy (uring, asio),
# nginx and HAProxy, all serving the same ECDSA P-256 certificate,
# measured in one run, interleaved, saved to bench/results/https-<date>-<time>.md.
# Usage: bench/run-https.sh [-r ROUNDS] [--seconds S] [--connections N] [--handshake-clients N]
#        [--targets "LIST"] [--workloads "LIST"] [--idle N] [--no-build] [--no-install]
#        (env: BUILD_DIR, default build/ in the source tree; QUIET_WAIT, default 600 s)
# --idle N: after the rounds, N idle keep-alive TLS connections (one GET / each) per proxy; RSS per connection.
#        With --workloads '' only that is measured.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-https
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=bench/lib/idle.sh
. "$here/lib/idle.sh"

rounds=3
seconds=5           # per sample
connections=50      # wrk's connections (newconn, keepalive)
handshake_clients=4 # parallel `openssl s_time -new` processes (handshake)
targets="uring asio nginx haproxy"
workloads="handshake newconn keepalive h2"
h2_clients=10       # h2load's connections (-c) for the h2 workload
h2_streams=100      # and concurrent streams on each (-m)
idle=0              # idle keep-alive TLS connections per proxy after the rounds (0: none)
build=1
install=1
quiet_wait=${QUIET_WAIT:-600}  # seconds, in all, that the run may wait for the shared machine to go quiet
quiet_pct=5                    # "quiet": both bench CPUs at most this busy with other work
retry_pct=5                    # a sample with more interference than this is measured again
proxy_cpu=0
peer_cpu=1
quiet_cpus="$proxy_cpu $peer_cpu"
host=api.localhost   # the Host header: the route
sni=localhost        # the URL's host, so wrk's SNI: resolvable, and a name on the start-up certificate

while [ $# -gt 0 ]; do
  case "$1" in
    -r|--rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --handshake-clients) handshake_clients=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-install) install=0; shift ;;
    -h|--help) usage ;;
    *) echo "run-https: unknown option $1" >&2; usage ;;
  esac
done
check_counts "$rounds" "$seconds" "$connections" "$handshake_clients"
check_words target "$targets" "uring asio nginx haproxy"
check_words workload "$workloads" "handshake newconn keepalive h2"
[ "$idle" = 0 ] || check_counts "$idle"
idle_raise_fd_limit
if [[ " $workloads " == *" h2 "* ]] && ! command -v h2load >/dev/null; then
  echo "run-https: the h2 workload needs h2load (Debian nghttp2-client; toolchains/setup-deps.sh bench)" >&2
  exit 1
fi

make_work_dir
chmod 755 "$work"  # nginx's workers run as nobody and own their temp directories in here

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
  build_connect
fi
upstream_bin=$(find_bin connect-http-upstream)
[ -n "$upstream_bin" ] || { echo "run-https: connect-http-upstream not found under $build_dir" >&2; exit 1; }
connect_bin=$build_dir/src/app/connect
connect_note=$(built_note "$connect_bin")

clk_tck=$(getconf CLK_TCK)

# --- Upstream ------------------------------------------------------------------------------------------
launch upstream "$peer_cpu" "$upstream_bin" --port 0
upstream_pid=$started_pid
upstream_port=$(listening_port upstream "$upstream_pid")
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
events { worker_connections 16384; }
http {
  access_log off;
  # nginx ends a connection after 1,000 requests by default (HTTP/2 streams count), and h2load does not
  # reconnect: each client then stops, so its h2 sample measured 10 x 1,000 requests and their resets.
  keepalive_requests 1000000;
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
    listen 127.0.0.1:$2 ssl http2 default_server;
    return 404;
  }
  server {
    listen 127.0.0.1:$2 ssl http2;
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
  # maxconn: derived by HAProxy from the descriptor limit (it needs two per connection and refuses to
  # start when a set maxconn does not fit)
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
  bind 127.0.0.1:$2 ssl crt $1/server.pem alpn h2,http/1.1
  acl is_api hdr(host) -m beg api.
  use_backend api if is_api
backend api
  server upstream 127.0.0.1:$upstream_port
EOF
}

declare -A port pid skip probe

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
  if is_connect "$t"; then
    # The port listens as soon as it is bound; the certificates come next, then the start block.
    for _ in $(seq 100); do
      grep -qs 'Press Ctrl+C to stop' "$work/$t.out" && break
      sleep 0.1
    done
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
  if [ "$w" = h2 ]; then
    # h2load: HTTP/2 over TLS (ALPN h2), $h2_clients connections with $h2_streams streams each in flight.
    timeout $((d + 60)) taskset -c "$peer_cpu" h2load -c "$h2_clients" -m "$h2_streams" -D "$d" \
      -H ":authority: $host" "https://$sni:$p/" >"$out" 2>>"$work/client.err" || return 1
    value=$(awk '/^finished in/{gsub(/,/, ""); print $4}' "$out")
    ops=$(awk '/^requests:/{print $8}' "$out")
    errs=$(awk '/^requests:/{print $10 + $12}' "$out")
    if ! grep -q '^status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx' "$out" || grep -q 'h2load: .*failed' "$out" ||
      ! grep -q 'Application protocol: h2' "$out"; then
      echo "h2load against $p: $(grep -E '^(status codes|requests|Application)' "$out" | tr '\n' ' ')" >>"$work/client.err"
      return 1
    fi
    [ -n "$value" ] && [ "${ops:-0}" -gt 0 ]
    return
  fi
  [ "$w" = newconn ] && close=(-H "Connection: close")
  timeout $((d + 60)) taskset -c "$peer_cpu" wrk -t1 -c"$connections" -d"${d}s" --latency -H "Host: $host" \
    "${close[@]}" "https://$sni:$p/" >"$out" 2>>"$work/client.err" || return 1
  wrk_results "$out" "$p" || return 1
  [ -n "$value" ] && [ "${ops:-0}" -gt 0 ]
}

# Warm-up, not recorded. A (workload, target) that fails here is left out of the rounds.
warm_up

start_quiet
started=$(date +%s)
run_rounds  # the samples, in $samples
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Idle keep-alive TLS connections (--idle N), one proxy at a time (bench/lib/idle.sh); the client checks the
# chain against the bench CA and sends SNI $sni, as wrk does.
idle_client_args=(--tls --sni "$sni" --cafile "$cert_dir/ca.crt")
idle_run

stop_proxies
stop "$upstream_pid"
upstream_status=$stopped

# --- Report --------------------------------------------------------------------------------------------
report=$(new_report https)

# table W TITLE PER: the markdown table of workload W, with ratios to nginx's median and CPU.
table() {
  local w=$1 title=$2 per=$3 t nginx_median
  nginx_median=$(awk -F'\t' -v w="$w" '$1 == w && $2 == "nginx" {print $4}' "$samples" | median)
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
    awk -F'\t' -v t="$t" -v tck="$clk_tck" -v ref="${nginx_median:-}" -v refcpu="${nginx_cpu:-}" "$awk_median"'
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
  host_line
  echo "- source: $(source_commit), build: $build_dir ($(build_type)); $build_note"
  echo "- connect-proxy: $connect_note; \`connect proxy start --https --foreground --quiet --threads 1 --io uring|asio --config FILE\`"
  echo "- nginx $(version_of nginx-light) (1 worker, upstream keepalive 64, no access log), HAProxy $(version_of haproxy)" \
    "(nbthread 1, http-reuse always, no log), wrk $(version_of wrk), OpenSSL $(openssl version | awk '{print $2}'); configs below"
  echo "- certificate, the same for every target: $cert_note; ECDSA P-256; TLS 1.2 and 1.3 offered, ALPN h2 then http/1.1 (wrk and s_time offer none: HTTP/1.1)"
  echo "- session resumption: every server with its default (TLS 1.3 session tickets: nginx, HAProxy and connect-proxy" \
    "all issue them; see each target's probe below). \`openssl s_time -new\` never offers a session: full handshakes." \
    "wrk offers its connection's last session on each reconnect (it SSL_clear()s and reuses the SSL object): resumed" \
    "handshakes (PSK with ECDHE, no certificate) wherever the server resumes"
  echo "- proxies pinned to CPU $proxy_cpu; wrk and the upstream (connect-http-upstream: plain HTTP, epoll, one" \
    "thread) pinned to CPU $peer_cpu; URL https://$sni:PORT/ (SNI $sni), every request carries Host: $host"
  echo "- $rounds rounds, interleaved (per round: each workload, targets in a rotated order), ${elapsed}s of measuring;" \
    "a warm-up pass per workload and target first, not recorded"
  quiet_line
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
      h2)
        echo "## HTTP/2 over TLS: 18-byte responses, h2load -c$h2_clients -m$h2_streams -D $seconds (ALPN h2; upstreams HTTP/1.1)"
        echo
        echo "h2load reports no percentiles: the latency columns read -."
        echo
        table h2 "req/s" req ;;
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
  idle_report TLS
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
  proxy_configs
  echo
  echo "Samples (workload target round req/s requests p50-us p99-us errors proxy-ticks proxy+softirq-ticks other-% rss-KiB):"
  echo
  samples_block "$samples" "$work/client.err"
} >"$report"

awk '/^## Notes/ {exit} /^## / {p = 1} p' "$report"
echo "saved $report" >&2
