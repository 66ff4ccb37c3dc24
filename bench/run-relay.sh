#!/usr/bin/env bash
# Relay benchmark: client -> sink directly, through connect-relay-bench (uring|asio-copy|splice) and through
# a plain blocking relay (posix-copy|splice), measured in one run, interleaved, saved to bench/results/.
# Usage: bench/run-relay.sh [-r ROUNDS] [--reps N] [--mib M] [--pings N] [--threads N] [--targets "LIST"]
#        [--no-build]   (env: BUILD_DIR, default build/ in the source tree; QUIET_WAIT, default 600 s)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=$(dirname "$here")
build_dir=${BUILD_DIR:-$src_dir/build}
bench=run-relay
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"

rounds=5
reps=20
mib=64
pings=20000
threads=1
quiet_wait=${QUIET_WAIT:-600}  # seconds, in all, that the run may wait for the shared machine to go quiet
quiet_pct=5                    # "quiet": both bench CPUs at most this busy with other work
retry_pct=5                    # a sample with more interference than this is measured again
targets="direct posix-copy posix-splice uring-copy uring-splice asio-copy asio-splice"
build=1
relay_cpu=0
peer_cpu=1
quiet_cpus="$relay_cpu $peer_cpu"

while [ $# -gt 0 ]; do
  case "$1" in
    -r|--rounds) rounds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    --pings) pings=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage ;;
    *) echo "run-relay: unknown option $1" >&2; usage ;;
  esac
done
check_counts "$rounds" "$reps" "$mib" "$pings" "$threads"

if [ "$build" = 1 ]; then
  if [ ! -f "$build_dir/build.ninja" ]; then
    nice -n 10 cmake -S "$src_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  nice -n 10 cmake --build "$build_dir" --target connect-relay-bench connect-relay-ref connect-relay-sink connect-relay-load >&2
fi
relay_bin=$(find "$build_dir" -name connect-relay-bench -type f -perm -u+x | head -n1)
sink_bin=$(find "$build_dir" -name connect-relay-sink -type f -perm -u+x | head -n1)
load_bin=$(find "$build_dir" -name connect-relay-load -type f -perm -u+x | head -n1)
ref_bin=$(find "$build_dir" -name connect-relay-ref -type f -perm -u+x | head -n1)
for b in "$relay_bin" "$sink_bin" "$load_bin" "$ref_bin"; do
  [ -n "$b" ] || { echo "run-relay: bench binaries not found under $build_dir" >&2; exit 1; }
done

make_work_dir

# start NAME CPU CMD...: runs CMD pinned to CPU and waits (up to 10 s) for its "listening PORT" line.
# Sets $started_pid and $started_port; returns 1 if it exits or stays silent.
start() {
  launch "$@"
  started_port=$(listening_port "$1" "$started_pid")
  [ -n "$started_port" ] && return 0
  echo "run-relay: $1 did not start: $(tail -n3 "$work/$1.err" | tr '\n' ' ')" >&2
  return 1
}

clk_tck=$(getconf CLK_TCK)

start sink "$peer_cpu" "$sink_bin" --port 0
sink_port=$started_port
sink_pid=$started_pid

declare -A port pid
active=()
for t in $targets; do
  if [ "$t" = direct ]; then
    port[$t]=$sink_port
    active+=("$t")
    continue
  fi
  io=${t%-*}
  mode=${t#*-}
  bin=$relay_bin
  [ "$io" = posix ] && bin=$ref_bin  # the yardstick: a plain blocking relay, not the io core
  if start "$t" "$relay_cpu" "$bin" --io "$io" --mode "$mode" --threads "$threads" --listen 0 \
      --upstream "$sink_port"; then
    port[$t]=$started_port
    pid[$t]=$started_pid
    active+=("$t")
  else
    echo "run-relay: skipping $t" >&2
    echo "- $t: did not start: $(tail -n3 "$work/$t.err" | tr '\n' ' ')" >>"$work/skipped.txt"
  fi
done
[ ${#active[@]} -gt 0 ] || { echo "run-relay: nothing to measure" >&2; exit 1; }

load() { taskset -c "$peer_cpu" "$load_bin" --port "$1" "${@:2}"; }

# Warm-up, not recorded: first connections, page faults in the buffer pools, lazy io-wq workers. A
# target that fails here is dropped from the run.
warm=()
for t in "${active[@]}"; do
  if load "${port[$t]}" --mode throughput --mib "$mib" --reps 2 >/dev/null 2>>"$work/load.err" &&
     load "${port[$t]}" --mode latency --pings 1000 --warmup 0 >/dev/null 2>>"$work/load.err"; then
    warm+=("$t")
  else
    echo "run-relay: $t failed its warm-up; skipping it" >&2
    echo "warm-up failed: $t" >>"$work/load.err"
  fi
done
active=("${warm[@]}")
[ ${#active[@]} -gt 0 ] || { echo "run-relay: every target failed its warm-up" >&2; exit 1; }

# All work done on the relay's CPU (user+nice+system+irq+softirq): the relay's cost including the
# loopback receive processing of the bytes it sends, which utime+stime does not show.
relay_cpu_ticks() { awk -v a="cpu$relay_cpu" '$1 == a {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# measure TARGET: one throughput run then one latency run. Sets tp, lat, relay_ticks, relay_cpu_busy
# (both over the throughput run) and other_pct: over both runs, the larger share of a CPU the target
# uses that went to other work (direct leaves the relay's CPU idle, and others may use it freely).
measure() {
  local t=$1 p=${pid[$1]:-} r0=0 r1=0 s0 s1 c0 c1 b0 b1 t0 t1 k0 k1
  local a0 a1
  children_ticks; c0=$(times_ticks)
  s0=$(cpu_ticks "$sink_pid"); t0=$(now_ns)
  a0=$(cpu_busy "$relay_cpu"); b0=$(cpu_busy "$peer_cpu")
  [ -n "$p" ] && r0=$(cpu_ticks "$p")
  k0=$(relay_cpu_ticks)
  tp=$(load "${port[$t]}" --mode throughput --mib "$mib" --reps "$reps" 2>>"$work/load.err") || return 1
  k1=$(relay_cpu_ticks)
  [ -n "$p" ] && r1=$(cpu_ticks "$p")
  relay_ticks=$((r1 - r0))
  relay_cpu_busy=$((k1 - k0))
  lat=$(load "${port[$t]}" --mode latency --pings "$pings" 2>>"$work/load.err") || return 1
  [ -n "$p" ] && r1=$(cpu_ticks "$p")
  a1=$(cpu_busy "$relay_cpu"); b1=$(cpu_busy "$peer_cpu")
  children_ticks; c1=$(times_ticks)
  s1=$(cpu_ticks "$sink_pid"); t1=$(now_ns)
  local span=$(((t1 - t0) * clk_tck / 1000000000))
  [ "$span" -gt 0 ] || span=1
  local other_relay=$(((a1 - a0 - (r1 - r0)) * 100 / span))
  local other_peer=$(((b1 - b0 - (s1 - s0) - (c1 - c0)) * 100 / span))
  [ -n "$p" ] || other_relay=0
  other_pct=$((other_relay > other_peer ? other_relay : other_peer))
  [ "$other_pct" -ge 0 ] || other_pct=0
}

start_quiet
samples=$work/samples.tsv
: >"$samples"
failures=0
retries=0
n=${#active[@]}
for r in $(seq "$rounds"); do
  # Round-robin, starting one target later each round so no target always runs first.
  for i in $(seq 0 $((n - 1))); do
    t=${active[$(((i + r) % n))]}
    # A sample disturbed by other work is measured again after a quiet spell, at most twice.
    sample_retried "round $r $t" /dev/null measure "$t" || continue
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$r" "$(field gbps "$tp")" "$(field bytes "$tp")" \
      "$relay_ticks" "$(field p50_us "$lat")" "$(field p99_us "$lat")" "$other_pct" "$relay_cpu_busy" >>"$samples"
    echo "round $r/$rounds $t: $(field gbps "$tp") GB/s, p50 $(field p50_us "$lat") us, p99" \
      "$(field p99_us "$lat") us, other work ${other_pct}%" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Where each relay's threads may run and last ran: io_uring's io-wq workers must stay on the relay's CPU.
thread_notes=$work/threads.txt
: >"$thread_notes"
for t in $targets; do
  p=${pid[$t]:-}
  [ -n "$p" ] || continue
  for task in /proc/"$p"/task/*; do
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    allowed=$(awk '/^Cpus_allowed_list/{print $2}' "$task/status" 2>/dev/null)
    last=$(sed 's/^.*) //' "$task/stat" 2>/dev/null | awk '{print $37}')
    ticks=$(sed 's/^.*) //' "$task/stat" 2>/dev/null | awk '{print $12 + $13}')
    echo "$t ${task##*/} $comm $allowed $last $ticks" >>"$thread_notes"
  done
done

# Stop the relays with SIGTERM and check that each exits cleanly (status 0) within 10 s.
declare -A exit_status
for t in $targets; do
  p=${pid[$t]:-}
  [ -n "$p" ] || continue
  stop "$p"
  exit_status[$t]=$stopped
done

report=$(new_report relay)
{
  echo "# Relay benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  host_line
  echo "- source: $(source_commit), build: $build_dir ($(build_type))"
  echo "- relay pinned to CPU $relay_cpu ($threads worker thread(s)); client and sink pinned to CPU $peer_cpu"
  echo "- $rounds rounds, interleaved; per round and target: $reps transfers of $mib MiB (connect, send," \
    "half-close, 8-byte ack), then $pings ping-pongs of 64 B on one connection"
  quiet_line
  echo
  echo "| target | GB/s median | GB/s min-max | vs direct | p50 us | p99 us | relay CPU us/MB | CPU $relay_cpu us/MB | other work % |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${active[@]}"; do
    awk -F'\t' -v t="$t" '$1 == t' "$samples" >"$work/$t.tsv" || true
    [ -s "$work/$t.tsv" ] || { echo "| $t | failed | | | | | | | |"; continue; }
    direct_median=$(awk -F'\t' '$1 == "direct"{print $3}' "$samples" | median)
    awk -F'\t' -v t="$t" -v tck="$clk_tck" -v direct="${direct_median:-}" "$awk_median"'
      { n++; g[n] = $3; p50[n] = $6; p99[n] = $7; oth[n] = $8; bytes += $4; ticks += $5; busy += $9 }
      END {
        mn = g[1]; mx = g[1]
        for (i = 1; i <= n; i++) { if (g[i] < mn) mn = g[i]; if (g[i] > mx) mx = g[i] }
        m = median(g, n)
        ratio = (direct != "" && direct > 0) ? sprintf("%.2f", m / direct) : "-"
        cpu = (t == "direct") ? "-" : sprintf("%.0f", ticks / tck * 1e6 / (bytes / 1e6))
        all = (t == "direct") ? "-" : sprintf("%.0f", busy / tck * 1e6 / (bytes / 1e6))
        printf "| %s | %.2f | %.2f-%.2f | %s | %.1f | %.1f | %s | %s | %.0f |\n", t, m, mn, mx, ratio, median(p50, n),
               median(p99, n), cpu, all, median(oth, n)
      }' "$work/$t.tsv"
  done
  echo
  echo "GB/s = 1e9 bytes/s over all transfers of a round, connects included. Latency columns are medians of"
  echo "the per-round p50/p99. Relay CPU = the relay's utime+stime (/proc/PID/stat, $clk_tck ticks/s) over the"
  echo "throughput runs only, divided by MB (1e6 bytes) relayed in the client->sink direction. CPU $relay_cpu us/MB"
  echo "= all busy time of the relay's CPU (/proc/stat, softirq included: the loopback receive work for the"
  echo "bytes the relay sends runs there and is charged to no task) per MB, same runs. Other work = median"
  echo "share of a bench CPU the target uses (user+nice+system+steal) that went to anything but the relay, the"
  echo "sink and the client; a sample above ${retry_pct}% is measured again (twice at most), after a quiet spell."
  [ "$failures" = 0 ] || echo "**$failures run(s) failed**; see the relay notes below."
  echo
  echo "## Relay notes"
  echo
  [ -f "$work/skipped.txt" ] && cat "$work/skipped.txt"
  for t in $targets; do
    [ -n "${pid[$t]:-}" ] || continue
    echo "- $t (${exit_status[$t]:-?} on SIGTERM):"
    sed 's/^/  - /' "$work/$t.err"
  done
  echo
  echo "Relay threads at the end (target tid comm cpus-allowed last-cpu ticks):"
  echo
  echo '```'
  cat "$thread_notes"
  echo '```'
  echo
  echo "Samples (target round GB/s bytes relay-ticks p50-us p99-us other-work-% cpu$relay_cpu-ticks):"
  echo
  samples_block "$samples" "$work/load.err"
} >"$report"

sed -n '/^| target/,/^$/p' "$report"
echo "saved $report" >&2
