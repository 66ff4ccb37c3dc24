// One client connection: the named pipeline of docs/architecture.md, repeated while keep-alive holds:
// read_head -> resolve_route -> connect_upstream -> forward_head -> relay_http | tunnel.
#pragma once

#include <cstdint>
#include <unordered_set>

#include "connect/coro/task.hpp"
#include "connect/core/published.hpp"
#include "connect/io/stream.hpp"
#include "connect/proxy/server.hpp"
#include "connect/route/table.hpp"
#include "upstream_pool.hpp"

namespace cproxy::proxy {

// What every connection of a server shares (read-only while it runs).
struct server_env {
  const server_options* options;
  std::uint16_t port;
};

// One worker's state: its own pool and route reader, touched only on its thread.
struct worker_env {
  explicit worker_env(const published<route::table>& source) : routes(source) {}
  published<route::table>::reader routes;
  upstream_pool pool;
  bool splice = false;     // the worker's backend splices without copying
  bool draining = false;   // stop(): finish the request in progress, then close
  io::context* ctx = nullptr;
  std::unordered_set<io::stream*> idle_clients;  // waiting for a next request: closed at once on drain
};

coro::task<void> serve_connection(io::socket client, const server_env* env, worker_env* worker);

}  // namespace cproxy::proxy
