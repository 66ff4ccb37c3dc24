# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with the scripts that source this
# Idle keep-alive connections for the HTTP and HTTPS benches (--idle N): the growth of each proxy's RSS while
# N connections, each after one GET /, are held open; and the report's section on it. Sourced, never run.
#
# The script sets, before it calls these: idle (the count), fd_limit (ulimit -n), host, peer_cpu, here, work,
# active[], port[], pid[], and idle_client_args (an array: extra idle_client.py options, e.g. --tls ...).

# idle_raise_fd_limit: 10,000 idle connections need more descriptors than the usual soft limit, in the
# proxies and the client; sets $fd_limit to what the limit is then.
idle_raise_fd_limit() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  fd_limit=$(ulimit -n)
}

declare -A idle_before idle_with idle_note idle_count

# idle_measure T: $idle connections to target T (HAProxy: at most what its maxconn takes), held while the
# proxy's memory (master + workers for nginx) is read; fills idle_before[T], idle_with[T] (KiB) or idle_note[T].
idle_measure() {
  local t=$1 pp c within
  # shellcheck disable=SC2207
  pp=($(proxy_pids "$t"))
  idle_before[$t]=$(rss_kib "${pp[@]}")
  idle_count[$t]=$idle
  # HAProxy takes about fd_limit / 2 connections (its maxconn, derived from the descriptor limit); more
  # would wait in the accept queue.
  if [ "$t" = haproxy ] && [ "$idle" -gt $((fd_limit / 2 - 1000)) ]; then idle_count[$t]=$((fd_limit / 2 - 1000)); fi
  # A TLS connection took up to 12 ms on the busy 2-core machine (Python's handshake, the proxy's): 10,000 of
  # them need more than 120 s there.
  within=$((120 + idle_count[$t] / 40))
  launch "idle-$t" "$peer_cpu" python3 "$here/http/idle_client.py" --port "${port[$t]}" --host "$host" \
    --count "${idle_count[$t]}" --within "$within" --hold 120 "${idle_client_args[@]}"
  c=$started_pid
  for _ in $(seq $(((within + 60) * 10))); do  # the client gives up after $within s of connecting
    grep -qs '^ready ' "$work/idle-$t.out" && break
    kill -0 "$c" 2>/dev/null || break
    sleep 0.1
  done
  if grep -qs '^ready ' "$work/idle-$t.out"; then
    sleep 2  # let the proxy settle (pools, timers) before reading its memory
    # shellcheck disable=SC2207
    pp=($(proxy_pids "$t"))
    idle_with[$t]=$(rss_kib "${pp[@]}")
  else
    idle_note[$t]="failed: $(tail -n 1 "$work/idle-$t.err" | cut -c1-120)"
  fi
  stop "$c"
  sleep 2  # the proxy closes the connections before the next one is measured
}

# idle_run: idle_measure for each target in active[] but direct, one at a time, when $idle > 0.
idle_run() {
  local t
  [ "$idle" -gt 0 ] || return 0
  for t in "${active[@]}"; do
    [ "$t" = direct ] && continue
    idle_measure "$t"
    echo "idle $t: ${idle_before[$t]:-?} KiB -> ${idle_with[$t]:-${idle_note[$t]}} KiB" >&2
  done
}

# idle_report KIND: the report's section ("plain" or "TLS" connections), when $idle > 0.
idle_report() {
  local t
  [ "$idle" -gt 0 ] || return 0
  echo
  echo "## Idle keep-alive connections: $idle $1 ones per proxy, each after one GET /"
  echo
  echo "| target | connections | RSS before MiB | RSS with them MiB | KiB per connection |"
  echo "|---|---:|---:|---:|---:|"
  for t in "${active[@]}"; do
    [ "$t" = direct ] && continue
    if [ -n "${idle_with[$t]:-}" ]; then
      awk -v t="$t" -v b="${idle_before[$t]}" -v a="${idle_with[$t]}" -v n="${idle_count[$t]}" \
        'BEGIN { printf "| %s | %d | %.1f | %.1f | %.2f |\n", t, n, b / 1024, a / 1024, (a - b) / n }'
    else
      echo "| $t | ${idle_note[$t]:-not measured} | | | |"
    fi
  done
  echo
  echo "VmRSS of the proxy's processes (/proc/PID/status) before, then with the connections open (2 s after the"
  echo "last answer); per connection = the difference / connections. The kernel's socket memory is in no one's"
  echo "RSS; nginx allocates its worker_connections slots at start, so they are in its RSS before. The client is"
  echo "bench/http/idle_client.py$( [ ${#idle_client_args[@]} -gt 0 ] && echo " ${idle_client_args[*]//"$work"/WORK}")."
  echo "The descriptor limit was $fd_limit (HAProxy gets about half of it as connections)."
}
