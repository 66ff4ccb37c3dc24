#!/usr/bin/env bash
# Layer guard: fails on an #include in src/ or include/connect/ that runs up (or across) the layers of
# docs/architecture.md. Usage: toolchains/check-layers.sh [root]   |   toolchains/check-layers.sh --self-test
set -euo pipefail

# What each layer may include besides itself; mirrors target_link_libraries in src/CMakeLists.txt.
# The include folder is shared by every target, so a wrong #include still compiles: this is the check.
# http, route and tls are siblings: http and route are sans-I/O (no io), tls is an io::stream.
# platform (the operating system's facilities, docs/platforms.md) sees only core; feed, pki and daemon use it.
declare -A allowed=(
  [core]=""
  [platform]="core"
  [coro]="core"
  [io]="core coro"
  [http]="core coro"
  [route]="core coro"
  [tls]="core coro io"
  [inspect]="core"
  [proxy]="core coro io http route tls inspect"
  [config]="core coro io http route tls inspect proxy"
  [feed]="core coro io http route tls inspect proxy config platform"
  [pki]="core coro io http route tls inspect proxy config platform"
  [daemon]="core coro io http route tls inspect proxy config feed pki platform"
  [app]="core coro io http route tls inspect proxy config feed pki daemon platform"
)

# One grep and one awk over the whole tree: a process per #include took minutes on a busy machine.
check() {
  local root=$1 rules="" layer
  [ -d "$root/src" ] && [ -d "$root/include/connect" ] || { echo "check-layers: no src/ and include/connect/ in $root" >&2; return 2; }
  for layer in "${!allowed[@]}"; do rules+="$layer=${allowed[$layer]};"; done
  (cd "$root" && find src include/connect -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0 |
    sort -z | xargs -0 -r grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' || true) |
    awk -v rules="$rules" '
      # The layer of a path relative to the root: src/<layer>/... or include/connect/<layer>/...
      function layer_of(path, parts, n) {
        n = split(path, parts, "/")
        if (parts[1] == "src" && n >= 3) return parts[2]
        if (parts[1] == "include" && parts[2] == "connect" && n >= 4) return parts[3]
        return ""
      }
      # Folds "." and ".." out of a relative path.
      function normalize(path, parts, n, i, out, depth) {
        n = split(path, parts, "/")
        depth = 0
        for (i = 1; i <= n; i++) {
          if (parts[i] == "" || parts[i] == ".") continue
          if (parts[i] == "..") { if (depth > 0) depth--; else out[++depth] = ".."; continue }
          out[++depth] = parts[i]
        }
        path = ""
        for (i = 1; i <= depth; i++) path = path (i > 1 ? "/" : "") out[i]
        return path
      }
      BEGIN {
        n = split(rules, entries, ";")
        for (i = 1; i <= n; i++) {
          if (entries[i] == "") continue
          split(entries[i], kv, "=")
          known[kv[1]] = 1
          m = split(kv[2], deps, " ")
          for (j = 1; j <= m; j++) ok[kv[1], deps[j]] = 1
        }
      }
      {
        file = $0; sub(/:.*/, "", file)
        rest = substr($0, length(file) + 2)
        line = rest; sub(/:.*/, "", line)
        text = substr(rest, length(line) + 2)
        layer = layer_of(file)
        if (!(layer in known)) next
        quoted = text ~ /#[[:space:]]*include[[:space:]]*"/
        target = text
        sub(/^[^"<]*["<]/, "", target)
        sub(/[">].*$/, "", target)
        private = ""
        if (target ~ /^connect\/[^\/]+\//) {
          split(target, parts, "/")
          dep = parts[2]
        } else if (quoted) {
          # A quoted relative include is found next to the including file first; where does it land?
          dir = file; sub(/\/[^\/]*$/, "", dir)
          resolved = normalize(dir "/" target)
          dep = layer_of(resolved)
          if (resolved ~ /^src\//) private = " (private header " resolved ")"
        } else {
          next
        }
        if (dep == "" || dep == layer) next
        # A private header of another layer is never an interface, whatever the direction.
        if (private != "" || !((layer, dep) in ok)) {
          print file ":" line ": " layer " includes " dep private
          bad++
        }
      }
      END {
        if (bad > 0) {
          print "check-layers: " bad " #include(s) run against the layers (see docs/architecture.md)" > "/dev/stderr"
          exit 1
        }
      }'
}

# Plants bad includes in a copy of the tree and expects each to be reported; the clean copy must pass.
self_test() {
  local src_root tmp out status=0
  src_root=$(cd "$(dirname "$0")/.." && pwd)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  cp -r "$src_root/src" "$src_root/include" "$tmp/"
  check "$tmp" >/dev/null || { echo "self-test: the clean tree fails" >&2; return 1; }
  printf '#include "connect/proxy/server.hpp"\n' >>"$tmp/src/io/socket.cpp"
  printf '#include <connect/daemon/cli.hpp>\n' >>"$tmp/include/connect/http/head.hpp"
  printf '#include "connect/tls/certificate.hpp"\n' >>"$tmp/src/route/table.cpp"
  printf '#include "../../src/proxy/relay.hpp"\n' >>"$tmp/src/daemon/cli.cpp"
  printf '#include "connect/pki/cert_store.hpp"\n' >>"$tmp/src/feed/route_feed.cpp"
  printf '#include "connect/io/socket.hpp"\n' >>"$tmp/src/platform/linux/process.cpp"
  printf '#include "connect/platform/process.hpp"\n' >>"$tmp/src/config/settings.cpp"
  out=$(check "$tmp" 2>/dev/null) && { echo "self-test: planted includes pass" >&2; return 1; }
  for want in "src/io/socket.cpp:[0-9]+: io includes proxy" \
              "include/connect/http/head.hpp:[0-9]+: http includes daemon" \
              "src/feed/route_feed.cpp:[0-9]+: feed includes pki" \
              "src/route/table.cpp:[0-9]+: route includes tls" \
              "src/platform/linux/process.cpp:[0-9]+: platform includes io" \
              "src/config/settings.cpp:[0-9]+: config includes platform" \
              "src/daemon/cli.cpp:[0-9]+: daemon includes proxy \(private header"; do
    grep -qE "^$want" <<<"$out" || { echo "self-test: missing '$want'" >&2; status=1; }
  done
  [ "$(wc -l <<<"$out")" -eq 7 ] || { echo "self-test: expected 7 violations, got:" >&2; echo "$out" >&2; status=1; }
  [ "$status" -eq 0 ] && echo "check-layers: self-test passed"
  return "$status"
}

if [ "${1:-}" = --self-test ]; then
  self_test
else
  check "$(cd "${1:-$(dirname "$0")/..}" && pwd)"
fi
