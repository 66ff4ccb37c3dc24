#!/usr/bin/env bash
# Route reload latency: how long a change to active-routes.json (or the death of a listed pid) takes to reach
# the data path, per io backend, saved to bench/results/reload-<date>-<time>.md.
# Usage: bench/run-reload.sh [-n SAMPLES] [--io "uring asio"] [--cases "rename rewrite delete deadpid"]
#        [--poll-ms MS] [--settle-ms MS] [--build]
#        (env: BUILD_DIR, default build/ in the source tree)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-reload
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

samples_per_case=50
backends="uring asio"
cases="rename rewrite delete deadpid"
poll_ms=1          # the client's request period while it waits for a change
settle_ms=150      # quiet time after a sample's starting state is confirmed, before the change
timeout_s=5        # a sample gives up after this long (the e2e tests' bound)
file_target_ms=200 # product.md: route-file changes apply within this (target)
pid_target_ms=2000 # product.md: a dead pid's entry drops out within this
build=0
proxy_cpu=0
peer_cpu=1

while [ $# -gt 0 ]; do
  case "$1" in
    -n|--samples) samples_per_case=$2; shift 2 ;;
    --io) backends=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --poll-ms) poll_ms=$2; shift 2 ;;
    --settle-ms) settle_ms=$2; shift 2 ;;
    --build) build=1; shift ;;
    -h|--help) usage ;;
    *) echo "run-reload: unknown option $1" >&2; usage ;;
  esac
done
for n in "$samples_per_case" "$poll_ms" "$settle_ms"; do
  [[ "$n" =~ ^[1-9][0-9]{0,4}$ ]] || { echo "run-reload: '$n' is not a count" >&2; exit 2; }
done
check_words "io backend" "$backends" "uring asio"
check_words case "$cases" "rename rewrite delete deadpid"
command -v python3 >/dev/null || { echo "run-reload: python3 is needed for the client" >&2; exit 1; }

# bench_cleanup_hook: on exit, after the proxies and the upstream. The client kills its `sleep` processes
# itself; these are the ones a hard stop of it left behind.
bench_cleanup_hook() {
  local pid
  if [ -f "$work/sleep.pids" ]; then
    while read -r pid; do
      [ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" = "sleep 1000 " ] && kill -KILL "$pid" 2>/dev/null
    done <"$work/sleep.pids" || true
  fi
}
make_work_dir

# --- Programs ------------------------------------------------------------------------------------------
connect_src=$build_dir/src/app/connect
build_note="the binary already in $build_dir"
if [ "$build" = 1 ] || [ ! -x "$connect_src" ]; then
  if [ ! -f "$build_dir/build.ninja" ] && [ ! -f "$build_dir/Makefile" ]; then
    nice -n 10 cmake -S "$src_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2
  fi
  nice -n 10 cmake --build "$build_dir" --target connect -j2 >"$work/build.log" 2>&1 ||
    { echo "run-reload: connect did not build:" >&2; tail -n 5 "$work/build.log" >&2; exit 1; }
  build_note="built by this run"
fi
[ -x "$connect_src" ] || { echo "run-reload: $connect_src is missing" >&2; exit 1; }
# A private copy: others may relink build/ while this runs.
connect_bin=$work/connect
cp "$connect_src" "$connect_bin"
connect_note="$connect_src ($(date -u -r "$connect_src" '+built %Y-%m-%d %H:%M UTC'),"
connect_note+=" $(build_type || echo '?')); $build_note"

pin() {  # pin CPU: the taskset prefix, or nothing on a 1-CPU machine
  [ "$(nproc)" -ge 2 ] && echo "taskset -c $1"
}

# launch_maybe_pinned NAME CPU CMD...: CMD in the background, pinned to CPU (unlike launch, not on a 1-CPU
# machine), output to $work/NAME.out and .err; sets $started_pid.
launch_maybe_pinned() {
  local name=$1 cpu=$2
  shift 2
  # shellcheck disable=SC2046
  $(pin "$cpu") "$@" >"$work/$name.out" 2>"$work/$name.err" &
  started_pid=$!
  pids+=("$started_pid")
}
# wait_line PID FILE REGEX: up to 10 s for FILE to hold a line matching REGEX while PID lives; prints
# the first match's first group (sed -E).
wait_line() {
  local v
  for _ in $(seq 100); do
    v=$(sed -nE "s/$3/\\1/p" "$2" 2>/dev/null | head -n1)
    [ -n "$v" ] && { echo "$v"; return 0; }
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- Upstream: the HTTP bench's own if built, else python's http.server --------------------------------
upstream_bin=$build_dir/bench/connect-http-upstream
if [ -x "$upstream_bin" ]; then
  launch_maybe_pinned upstream "$peer_cpu" "$upstream_bin" --port 0
  upstream_note="connect-http-upstream (bench/http/upstream.cpp)"
  upstream_port=$(wait_line "$started_pid" "$work/upstream.out" '^listening ([0-9]+).*') || true
else
  launch_maybe_pinned upstream "$peer_cpu" python3 -u -m http.server --bind 127.0.0.1 --directory "$work" 0
  upstream_note="python3 -m http.server"
  upstream_port=$(wait_line "$started_pid" "$work/upstream.out" '.* port ([0-9]+) .*') || true
fi
upstream_pid=$started_pid
[ -n "${upstream_port:-}" ] || { echo "run-reload: the upstream did not start: $(cat "$work/upstream.err")" >&2; exit 1; }

# --- The client: makes each change itself and times it ---------------------------------------------------
cat >"$work/client.py" <<'EOF'
# One sample = set up the starting state (written by rename, confirmed over HTTP by a marker route that
# answers 200), wait --settle-ms, make the change (t0 = just before the syscall that makes it), then send
# GET / with Host NAME.localhost every --poll-ms on one keep-alive connection until the expected answer.
# Prints: case sample latency_ms t0_unix_s name   (latency "timeout" after --timeout-s).
import argparse, os, signal, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--upstream", type=int, required=True)
ap.add_argument("--home", required=True)
ap.add_argument("--samples", type=int, required=True)
ap.add_argument("--cases", required=True)
ap.add_argument("--poll-ms", type=float, required=True)
ap.add_argument("--settle-ms", type=float, required=True)
ap.add_argument("--timeout-s", type=float, required=True)
ap.add_argument("--sleep-pids", required=True)
a = ap.parse_args()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

path = os.path.join(a.home, "active-routes.json")
sleepers = []
conn = None

def entry(name, pid=0):
    return ('{"serviceName": "%s", "localPort": %d, "pid": %d, "protocol": "http", '
            '"startedAt": "2026-01-01T00:00:00Z"}' % (name, a.upstream, pid))

def text(*entries):
    return '{"version": 1, "routes": [%s]}\n' % ", ".join(entries)

def replace(body):  # a temp file renamed over the routes file; returns the time just before the rename
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(body)
    t0 = time.monotonic()
    os.rename(tmp, path)
    return t0

def request(name):
    """The status of GET / for NAME.localhost on the kept-alive connection; 0 on failure."""
    global conn
    for attempt in (0, 1):  # once more on a fresh connection if the kept one was closed
        try:
            if conn is None:
                conn = socket.create_connection(("127.0.0.1", a.port), timeout=2)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(b"GET / HTTP/1.1\r\nHost: %s.localhost\r\n\r\n" % name.encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    raise ConnectionError("closed")
                buf += d
            head, _, body = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
            length = int(headers.get("content-length", "-1"))
            if length < 0 or headers.get("connection", "").lower() == "close":
                conn.close(); conn = None  # no length: read to EOF is not worth it here; start afresh
            else:
                while len(body) < length:
                    d = conn.recv(65536)
                    if not d:
                        raise ConnectionError("closed")
                    body += d
            return status
        except (OSError, ValueError, IndexError):
            if conn is not None:
                conn.close()
            conn = None
    return 0

def routed(name):  # the upstream answered through the proxy (the proxy's own pages for NAME.localhost are 404/502)
    return request(name) == 200

def gone(name):  # the proxy's "Service not found"
    return request(name) == 404

def wait_for(pred, name, t0, limit):
    """Polls pred(name) every poll_ms from t0; ms from t0 to the first true answer, or None."""
    period = a.poll_ms / 1000.0
    k = 0
    while True:
        ok = pred(name)
        now = time.monotonic()
        if ok:
            return (now - t0) * 1000.0
        if now - t0 > limit:
            return None
        k += 1
        nxt = t0 + k * period
        if nxt > now:
            time.sleep(nxt - now)
        else:
            k = int((now - t0) / period)

marker_n = 0
def settle_into(*entries):
    """Writes the starting state with a fresh marker route and waits until it is live, then settles."""
    global marker_n
    marker_n += 1
    marker = "m%d" % marker_n
    t = replace(text(entry(marker), *entries))
    if wait_for(routed, marker, t, a.timeout_s) is None:
        raise SystemExit("run-reload client: the starting state (%s) never went live" % marker)
    time.sleep(a.settle_ms / 1000.0)

def sample(case, i):
    name = "%s%d" % (case, i)
    if case == "rename":
        settle_into()
        wall = time.time()
        t0 = replace(text(entry("m%d" % marker_n), entry(name)))
        return wall, name, wait_for(routed, name, t0, a.timeout_s)
    if case == "rewrite":
        settle_into()
        body = text(entry("m%d" % marker_n), entry(name))
        wall = time.time()
        t0 = time.monotonic()
        with open(path, "w") as f:  # O_TRUNC, write, close: in place
            f.write(body)
        return wall, name, wait_for(routed, name, t0, a.timeout_s)
    if case == "delete":
        settle_into(entry(name))
        wall = time.time()
        t0 = time.monotonic()
        os.unlink(path)
        return wall, name, wait_for(gone, name, t0, a.timeout_s)
    if case == "deadpid":
        p = subprocess.Popen(["sleep", "1000"])
        sleepers.append(p)
        with open(a.sleep_pids, "a") as f:
            f.write("%d\n" % p.pid)
        settle_into(entry(name, p.pid))
        wall = time.time()
        t0 = time.monotonic()
        p.kill()
        p.wait()  # reaped at once, as a parent that watches its children would
        return wall, name, wait_for(gone, name, t0, a.timeout_s)
    raise SystemExit("unknown case " + case)

try:
    for i in range(1, a.samples + 1):  # the cases interleaved, so slow spells of the machine hit all of them
        for case in a.cases.split():
            wall, name, ms = sample(case, i)
            print("%s\t%d\t%s\t%.6f\t%s" % (case, i, "timeout" if ms is None else "%.3f" % ms, wall, name),
                  flush=True)
finally:
    for p in sleepers:
        if p.poll() is None:
            p.kill()
            p.wait()
EOF

# --- Runs ----------------------------------------------------------------------------------------------
declare -A proxy_status watch_note
samples=$work/samples.tsv
: >"$samples"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
for io in $backends; do
  home=$work/home-$io
  mkdir -p "$home"
  PRIVATECONNECT_HOME=$home launch_maybe_pinned "$io" "$proxy_cpu" "$connect_bin" proxy start --foreground --quiet --port 0 \
    --threads 1 --io "$io"
  proxy_pid=$started_pid
  port=$(wait_line "$proxy_pid" "$work/$io.err" '.* listening on 127\.0\.0\.1:([0-9]+) .*') || true
  if [ -z "${port:-}" ]; then
    echo "run-reload: $io: the proxy did not start: $(tail -n 3 "$work/$io.err" | tr '\n' ' ')" >&2
    stop "$proxy_pid"
    proxy_status[$io]="did not start"
    continue
  fi
  echo "run-reload: $io: proxy on port $port, $samples_per_case samples of: $cases" >&2
  # shellcheck disable=SC2046
  if ! $(pin "$peer_cpu") python3 -u "$work/client.py" --port "$port" --upstream "$upstream_port" --home "$home" \
      --samples "$samples_per_case" --cases "$cases" --poll-ms "$poll_ms" --settle-ms "$settle_ms" \
      --timeout-s "$timeout_s" --sleep-pids "$work/sleep.pids" >"$work/client-$io.tsv" 2>"$work/client-$io.err"; then
    echo "run-reload: $io: the client failed: $(tail -n 3 "$work/client-$io.err" | tr '\n' ' ')" >&2
  fi
  awk -v io="$io" '{print io "\t" $0}' "$work/client-$io.tsv" >>"$samples"
  stop "$proxy_pid"
  proxy_status[$io]=$stopped
  watch_note[$io]=$(grep -m1 -E 'routes: .*(checking|every)|inotify' "$work/$io.err" | cut -c1-160 || true)
done
stop "$upstream_pid"
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[ -s "$samples" ] || { echo "run-reload: no samples" >&2; exit 1; }

# --- Report --------------------------------------------------------------------------------------------
report=$(new_report reload)

# table: per backend and case, the percentiles (nearest rank) of the latency, and the proxy's own view: the
# time from the change to its log line "routes: +NAME" / "-NAME" (written just after the new table is
# published; the log has millisecond stamps).
table() {
  python3 - "$samples" "$work" "$file_target_ms" "$pid_target_ms" "$backends" "$cases" <<'EOF'
import math, re, sys, datetime
samples, work, file_target, pid_target = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
backends, cases = sys.argv[5].split(), sys.argv[6].split()
rows = [l.rstrip("\n").split("\t") for l in open(samples) if l.strip()]
logged = {}
for io in backends:
    try:
        for line in open("%s/%s.err" % (work, io), errors="replace"):
            m = re.match(r"(\S+Z) info routes: (.*)", line)
            if not m:
                continue
            ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            for part in m.group(2).split(", "):
                n = re.match(r"([+-])([A-Za-z0-9-]+)", part)
                if n:
                    logged.setdefault((io, n.group(1) + n.group(2)), ts)
    except OSError:
        pass
what = {"rename": "add by rename (temp file, mv over it) -> first 200",
        "rewrite": "add by in-place rewrite (O_TRUNC + write) -> first 200",
        "delete": "delete the file -> 404",
        "deadpid": "listed pid killed (SIGKILL, reaped) -> 404"}
def rank(v, p):
    return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)]
print("| io | case | n | p50 ms | p90 ms | p99 ms | max ms | over target | timeouts | proxy logged the change, p50 / max ms |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for io in backends:
    for case in cases:
        sel = [r for r in rows if r[0] == io and r[1] == case]
        if not sel:
            print("| %s | %s | 0 | | | | | | | |" % (io, what[case]))
            continue
        target = pid_target if case == "deadpid" else file_target
        ok = sorted(float(r[3]) for r in sel if r[3] != "timeout")
        timeouts = len(sel) - len(ok)
        over = sum(1 for v in ok if v > target) + timeouts
        sign = "-" if case in ("delete", "deadpid") else "+"
        lags = sorted((logged[(io, sign + r[5])] - float(r[4])) * 1000.0 for r in sel if (io, sign + r[5]) in logged)
        cell = lambda v, p: "%.1f" % rank(v, p) if v else "-"
        log_cell = "%d / %d" % (round(rank(lags, 50)) + 0, round(lags[-1]) + 0) if lags else "-"
        print("| %s | %s | %d | %s | %s | %s | %s | %d (> %g ms) | %d | %s |" % (
            io, what[case], len(sel), cell(ok, 50), cell(ok, 90), cell(ok, 99), "%.1f" % ok[-1] if ok else "-",
            over, target, timeouts, log_cell))
EOF
}

{
  echo "# Route reload latency, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  host_line
  echo "- source: $(source_commit); connect: $connect_note"
  echo "- \`PRIVATECONNECT_HOME=TMP connect proxy start --foreground --quiet --port 0 --threads 1 --io uring|asio\`," \
    "pinned to CPU $proxy_cpu; the client (python3, one keep-alive connection) and the upstream ($upstream_note)" \
    "pinned to CPU $peer_cpu; everything on 127.0.0.1"
  echo "- $samples_per_case samples per case and backend, the cases interleaved; poll every $poll_ms ms," \
    "${settle_ms} ms of quiet before each change, give up after ${timeout_s} s; ${elapsed}s in all"
  echo "- load average before/after: $load_before / $load_after (the machine is shared)"
  echo
  table
  echo
  echo "Latency = from just before the syscall that makes the change (rename, the open with O_TRUNC, unlink, kill)"
  echo "to the end of the first answer that shows it: a 200 from the upstream through the proxy for an added route,"
  echo "the proxy's 404 for a removed one. It includes up to one poll period ($poll_ms ms) and one request"
  echo "(~0.1-0.3 ms from python). Percentiles are nearest-rank (rank ceil(p n)): with up to 100 samples p99 is"
  echo "the largest. Over target: above ${file_target_ms} ms for file changes, ${pid_target_ms} ms for"
  echo "a dead pid (product.md), timeouts included. The last column is the proxy's own view: its log line for the"
  echo "change (written right after the new table is published; millisecond stamps, so +-1 ms) minus the wall"
  echo "time of the change."
  echo "Each sample starts from a state written by rename and confirmed live over HTTP (a fresh marker route"
  echo "answering 200), so no reload is pending when the change is made. Bench figures are reported, never"
  echo "asserted in tests."
  echo
  echo "## Notes"
  echo
  for io in $backends; do
    echo "- $io: proxy ${proxy_status[$io]:-?} on SIGTERM${watch_note[$io]:+; ${watch_note[$io]}}"
    if [ -s "$work/client-$io.err" ]; then
      echo "  - client: $(tail -n 3 "$work/client-$io.err" | tr '\n' ' ' | cut -c1-300)"
    fi
    grep -vE ' info routes: ' "$work/$io.err" 2>/dev/null | tail -n 4 | sed 's/^/  - /' || true
  done
  echo
  echo "## Samples (ms)"
  echo
  for io in $backends; do
    for c in $cases; do
      echo "- $io $c: $(awk -F'\t' -v io="$io" -v c="$c" '$1 == io && $2 == c {printf "%s%s", sep, $4; sep = " "}' "$samples")"
    done
  done
} >"$report"

sed -n '/^| io /,/^$/p' "$report"
echo "run-reload: saved $report" >&2
