# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with the scripts that source this
# What the bench scripts (bench/run-*.sh) share: the work directory and its clean-up, starting and stopping
# pinned processes, CPU accounting from /proc, waiting for the shared machine to go quiet, samples measured
# again when disturbed, and pieces of the Markdown report. Sourced, never run.
#
# A script sets, before it calls these: bench (its name in messages, e.g. run-http), and where used
# clk_tck, quiet_wait, quiet_pct, quiet_cpus ("CPU CPU": the two bench CPUs), retry_pct, failures, retries.
# Functions that run or stop processes keep $work and $pids (set by make_work_dir).

# --- Options -------------------------------------------------------------------------------------------
# usage: prints the comment block at the top of the script (its line 2 to the first non-comment line),
# without the "# ", and exits 2.
usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

# check_counts VALUE...: exits 2 unless each VALUE is a count from 1 to 999999.
check_counts() {
  local n
  for n in "$@"; do
    [[ "$n" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "$bench: '$n' is not a count" >&2; exit 2; }
  done
}

# check_words WHAT "LIST" "ALLOWED": exits 2 if a word of LIST is not among ALLOWED ("unknown WHAT word").
check_words() {
  local w
  for w in $2; do
    [[ " $3 " == *" $w "* ]] || { echo "$bench: unknown $1 $w" >&2; exit 2; }
  done
}

# workers_layout N: where the processes run with N workers per proxy. One (the default): the proxy pinned to
# CPU 0 ($proxy_cpu), the load generator and the upstream or origin to CPU 1 ($peer_cpu). More: nothing pinned
# to one CPU; the proxies, the clients and the peers all share CPUs 0-(N-1) (the bench machine has 2 cores), so
# $proxy_cpu and $peer_cpu are both that list and measure() charges the two CPUs' other work together.
workers_layout() {
  workers=$1
  if [ "$workers" -gt "$(nproc)" ]; then
    echo "$bench: --workers $workers, but this machine has $(nproc) CPUs" >&2
    exit 2
  fi
  if [ "$workers" = 1 ]; then
    proxy_cpu=0
    peer_cpu=1
  else
    proxy_cpu=$(seq -s, 0 $((workers - 1)))
    peer_cpu=$proxy_cpu
  fi
}

# --- Work directory and processes ------------------------------------------------------------------------
# make_work_dir: a fresh /tmp/$bench.XXXXXX as $work, and traps that stop every pid still in $pids and
# remove it on exit (bench_cleanup_hook, if the script defines one, runs just before the removal).
make_work_dir() {
  work=$(mktemp -d "/tmp/$bench.XXXXXX")
  pids=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if declare -F bench_cleanup_hook >/dev/null; then bench_cleanup_hook; fi
  rm -rf "$work"
}

# launch NAME CPU CMD...: runs CMD pinned to CPU, output to $work/NAME.out and .err; sets $started_pid.
launch() {
  local name=$1 cpu=$2
  shift 2
  taskset -c "$cpu" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  started_pid=$!
  pids+=("$started_pid")
}

# listening_port NAME PID: up to 10 s for PID's "listening PORT" line in $work/NAME.out; prints PORT
# (nothing if PID exits or stays silent).
listening_port() {
  for _ in $(seq 100); do
    grep -qs '^listening ' "$work/$1.out" && break
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  awk '/^listening /{print $2; exit}' "$work/$1.out"
}

# wait_port PID PORT: up to 10 s for PORT to accept a connection while PID lives.
wait_port() {
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

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
  echo "$bench: no free port found" >&2
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

# --- Programs --------------------------------------------------------------------------------------------
# build_connect: when $targets has uring or asio, builds connect in $build_dir and notes it in $build_note;
# if that fails, the binary already there (if any) is used.
build_connect() {
  if [[ " $targets " == *" uring "* || " $targets " == *" asio "* ]]; then
    if nice -n 10 cmake --build "$build_dir" --target connect >"$work/build-connect.log" 2>&1; then
      build_note+="; connect built"
    else
      echo "$bench: connect did not build; using the binary already in $build_dir, if any" >&2
      build_note+="; **connect did not build**, the binary already there was used"
    fi
  fi
}
# built_note BIN: "BIN: built <date>" from its mtime, or "BIN: missing".
built_note() { echo "$1: $( [ -x "$1" ] && date -u -r "$1" '+built %Y-%m-%d %H:%M UTC' || echo 'missing')"; }
# find_bin NAME: the executable NAME in $peer_dir (the peers compiled without CMake) if set, else the first
# under $build_dir; nothing if there is none.
find_bin() {
  local b=""
  [ -n "${peer_dir:-}" ] && [ -x "$peer_dir/$1" ] && b=$peer_dir/$1
  [ -n "$b" ] || b=$(find "$build_dir" -name "$1" -type f -perm -u+x 2>/dev/null | head -n1)
  echo "$b"
}

# --- Proxy targets (HTTP and HTTPS benches) --------------------------------------------------------------
# proxy_pids T: the processes whose CPU time and memory count for target T (nginx: master + workers);
# reads the script's pid[] table.
proxy_pids() {
  local p=${pid[$1]:-}
  [ -n "$p" ] || return 0
  echo "$p"
  if [ "$1" = nginx ]; then pgrep -P "$p" || true; fi
}
is_connect() { case "$1" in uring|asio|uring-base|asio-base) return 0 ;; *) return 1 ;; esac; }

# stop_proxies: stops each target in active[] and checks that it exits within 10 s: SIGTERM, but SIGUSR1
# for HAProxy, whose SIGTERM is a hard stop that exits 143. Fills exit_status[] and peak[] (VmHWM, MiB).
stop_proxies() {
  local t
  declare -gA exit_status peak
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
}

# side_pids: peers besides $upstream_pid that serve the load (an nginx origin and its workers); their CPU time
# is the bench's own, not other work.
side_pids=()

# measure W T: one sample of workload W (the script's load()) against target T. Sets what load() sets,
# plus proxy_ticks, cpu0_ticks (proxy_ticks + irq and softirq time of $proxy_cpu: loopback receive work for
# what the proxy sends, charged to no task), rss (KiB, after it) and other_pct: the larger share of a CPU
# the target uses that went to other work (direct leaves the proxy's CPU idle, and others may use it freely).
measure() {
  local w=$1 t=$2 pp r0=0 r1=0 s0 s1 c0 c1 a0 a1 b0 b1 t0 t1 k0 k1
  # shellcheck disable=SC2207
  pp=($(proxy_pids "$t"))
  children_ticks; c0=$(times_ticks)
  s0=$(cpu_ticks "$upstream_pid" "${side_pids[@]}"); t0=$(now_ns)
  a0=$(cpu_busy "$proxy_cpu"); b0=$(cpu_busy "$peer_cpu")
  [ ${#pp[@]} -gt 0 ] && r0=$(cpu_ticks "${pp[@]}")
  k0=$(softirq_ticks "$proxy_cpu")
  load "$w" "${port[$t]}" || return 1
  k1=$(softirq_ticks "$proxy_cpu")
  [ ${#pp[@]} -gt 0 ] && r1=$(cpu_ticks "${pp[@]}")
  a1=$(cpu_busy "$proxy_cpu"); b1=$(cpu_busy "$peer_cpu")
  children_ticks; c1=$(times_ticks)
  s1=$(cpu_ticks "$upstream_pid" "${side_pids[@]}"); t1=$(now_ns)
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
  if [ "$proxy_cpu" = "$peer_cpu" ]; then
    # One set of CPUs for all (workers_layout): what none of ours used, as a share of one CPU.
    other_pct=$(((a1 - a0 - (r1 - r0) - (s1 - s0) - (c1 - c0)) * 100 / span))
  fi
  [ "$other_pct" -ge 0 ] || other_pct=0
}

# warm_up: one short load() (a fifth) of each workload against each target in active[], not recorded; a
# (workload, target) that fails goes into broken[] and is left out of the rounds.
warm_up() {
  local w t
  declare -gA broken
  for w in $workloads; do
    for t in "${active[@]}"; do
      if ! load "$w" "${port[$t]}" 0.2; then
        broken[$w/$t]="failed its warm-up: $(tail -n 1 "$work/client.err" 2>/dev/null | cut -c1-160)"
        echo "$bench: $w $t ${broken[$w/$t]}; skipping it" >&2
      fi
    done
  done
}

# run_rounds: $rounds rounds of each workload against each target in active[] but the broken[] pairs, one
# sample each (measure, retried when disturbed); each sample a tab-separated line of $work/samples.tsv
# ($samples). Counts $failures and $retries.
run_rounds() {
  local r w i t n=${#active[@]}
  samples=$work/samples.tsv
  : >"$samples"
  failures=0
  retries=0
  for r in $(seq "$rounds"); do
    for w in $workloads; do
      # Round-robin, starting one target later each round so no target always runs first.
      for i in $(seq 0 $((n - 1))); do
        t=${active[$(((i + r) % n))]}
        [ -z "${broken[$w/$t]:-}" ] || continue
        sample_retried "round $r $w $t" "$work/client.err" measure "$w" "$t" || continue
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$r" "$value" "$ops" "$p50" "$p99" \
          "$errs" "$proxy_ticks" "$cpu0_ticks" "$other_pct" "$rss" >>"$samples"
        echo "round $r/$rounds $w $t: $value, p50 $p50 us, p99 $p99 us, errors $errs, other work ${other_pct}%" >&2
      done
    done
  done
}

# --- Clients' output -------------------------------------------------------------------------------------
# field NAME LINE: the value after NAME in a "key value" line.
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) {print $(i + 1); exit}}' <<<"$2"; }

# wrk prints latencies as 176.00us, 1.23ms, 1.00s: to microseconds.
wrk_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                                   else if (v ~ /m$/) print n * 60e6; else print n * 1e6 }'; }

# wrk_results FILE PORT: sets value (req/s), ops, p50, p99 (us) and errs from wrk --latency output in FILE.
# Status 1 (noted in $work/client.err) if some answers were not 2xx: those were not proxied requests.
wrk_results() {
  local out=$1
  value=$(awk '/^Requests\/sec:/{print $2}' "$out")
  ops=$(awk '/ requests in /{print $1}' "$out")
  p50=$(wrk_us "$(awk '$1 == "50%"{print $2}' "$out")")
  p99=$(wrk_us "$(awk '$1 == "99%"{print $2}' "$out")")
  errs=$(awk '/^  Socket errors:/{gsub(/,/, ""); s += $4 + $6 + $8 + $10} /Non-2xx/{s += $NF} END{print s + 0}' "$out")
  if grep -q 'Non-2xx' "$out"; then
    echo "wrk against $2: $(grep 'Non-2xx' "$out")" >>"$work/client.err"
    return 1  # answers that are not the upstream's: not a proxied request
  fi
}

# --- CPU accounting --------------------------------------------------------------------------------------
# cpu_ticks PID...: utime + stime of the processes, in clock ticks (fields 14 and 15 of /proc/PID/stat; comm
# may hold spaces). A process that is gone counts 0.
cpu_ticks() {
  local p v s=0
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || true
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
# rss_kib PID...: their resident memory (VmRSS), KiB.
rss_kib() {
  local p v s=0
  for p in "$@"; do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null) || true
    s=$((s + ${v:-0}))
  done
  echo "$s"
}

# The machine is shared: CPU time on the two bench CPUs that is not the measured processes' or the
# clients' is interference. cpu_busy N sums user+nice+system+steal of CPU N: irq and softirq time is left
# out because loopback TCP does its receive work there and the kernel charges it to no task (so it is
# mostly ours).
# N may be a list (0,1): the sum over those CPUs.
cpu_busy() { awk -v l=",$1," '$1 ~ /^cpu[0-9]/ && index(l, "," substr($1, 4) ",") {s += $2 + $3 + $4 + $9} END {print s + 0}' /proc/stat; }
# irq + softirq time of CPU N: loopback TCP does the receive work for the bytes a proxy on it sends there,
# and the kernel charges it to no task.
softirq_ticks() { awk -v l=",$1," '$1 ~ /^cpu[0-9]/ && index(l, "," substr($1, 4) ",") {s += $7 + $8} END {print s + 0}' /proc/stat; }
# The clients' CPU time comes from bash's `times`. Call as `children_ticks; c=$(times_ticks)`: `times` must
# run in the script's shell, not in a $(...) subshell, whose own children are none.
children_ticks() { times >"$work/times"; }
times_ticks() {
  awk -v tck="$clk_tck" 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
    printf "%.0f\n", t * tck
  }' "$work/times"
}
now_ns() { date +%s%N; }

# --- Quiet CPUs and retried samples ----------------------------------------------------------------------
# wait_quiet: waits until other processes leave both bench CPUs ($quiet_cpus) at most $quiet_pct busy,
# spending at most what is left of $quiet_wait seconds for the whole run ($quiet_waited so far).
quiet_waited=0
wait_quiet() {
  local a0 a1 b0 b1 pct cpu_a cpu_b
  read -r cpu_a cpu_b <<<"$quiet_cpus"
  while [ "$quiet_waited" -lt "$quiet_wait" ]; do
    a0=$(cpu_busy "$cpu_a"); b0=$(cpu_busy "$cpu_b"); sleep 1
    a1=$(cpu_busy "$cpu_a"); b1=$(cpu_busy "$cpu_b")
    pct=$((((a1 - a0) > (b1 - b0) ? (a1 - a0) : (b1 - b0)) * 100 / clk_tck))
    [ "$pct" -le "$quiet_pct" ] && return 0
    [ $((quiet_waited % 30)) = 0 ] && echo "$bench: a bench CPU is ${pct}% busy with other work; waiting" >&2
    quiet_waited=$((quiet_waited + 1))
  done
  return 1
}

# start_quiet: waits for quiet CPUs before the rounds; sets $quiet_note (for the report) and $load_before.
start_quiet() {
  quiet_note="bench CPUs were quiet at the start"
  wait_quiet || quiet_note="**bench CPUs were still busy with other work after ${quiet_wait}s of waiting**"
  [ "$quiet_wait" -gt 0 ] || quiet_note="bench CPUs were not checked for other work (QUIET_WAIT=0)"
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
}

# sample_retried LABEL FAILLOG CMD...: runs CMD (a measure that sets $other_pct); a sample disturbed by more
# than $retry_pct of other work is measured again after a quiet spell, at most twice. A failed CMD is not
# retried: it counts in $failures and is noted in FAILLOG. Status 0 if CMD succeeded at least once.
sample_retried() {
  local label=$1 faillog=$2 attempt ok=1
  shift 2
  for attempt in 1 2 3; do
    if ! "$@"; then
      echo "$bench: $label: client failed" >&2
      echo "$label: client failed" >>"$faillog"
      failures=$((failures + 1))
      break
    fi
    ok=0
    [ "$other_pct" -le "$retry_pct" ] && break
    if [ "$attempt" -lt 3 ]; then
      echo "$bench: $label: ${other_pct}% of the bench CPUs went to other work; again" >&2
      retries=$((retries + 1))
      wait_quiet || true
    fi
  done
  return "$ok"
}

# --- Report ----------------------------------------------------------------------------------------------
# new_report KIND: prints the path of a new result file, bench/results/KIND-<date>-<time>.md.
new_report() {
  mkdir -p "$here/results"
  echo "$here/results/$1-$(date +%Y%m%d-%H%M%S).md"
}

# host_line: the report's "- host:" line (kernel, CPUs, CPU model).
host_line() { echo "- host: $(uname -sr), $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"; }
# source_commit: the source tree's commit (with -dirty for local changes).
source_commit() { git -C "$src_dir" describe --always --dirty 2>/dev/null || echo 'no commit yet'; }
# build_type: CMAKE_BUILD_TYPE of $build_dir (status 2 if it is not configured).
build_type() { awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$build_dir/CMakeCache.txt" 2>/dev/null; }
# version_of PACKAGE: its installed Debian version, or ?.
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }

# quiet_line: the report's line on how shared the machine was during the rounds.
quiet_line() {
  echo "- the machine is shared: $quiet_note; ${quiet_waited}s spent waiting for quiet;" \
    "load average before/after: $load_before / $load_after;" \
    "$retries sample(s) measured again because other work took more than ${retry_pct}% of the bench CPUs"
}

# median: the median of the numbers on stdin, one a line (nothing if none).
median() {
  sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
# awk_median: an awk function median(a, n) (sorts a[1..n] in place) for the report tables' awk programs.
# shellcheck disable=SC2034
awk_median='
      function median(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }'

# proxy_configs: the nginx and HAProxy configurations and connect-proxy's routes file of the run, if written.
proxy_configs() {
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
}

# samples_block SAMPLES ERRORS: the raw samples in a code block, then the last 20 lines of ERRORS if any.
samples_block() {
  echo '```'
  cat "$1"
  [ -s "$2" ] && { echo; echo "client errors:"; tail -n 20 "$2"; }
  echo '```'
}
