// One client connection: the HTTP/1.1 front-end of the pipeline drawn in docs/architecture.md,
// sniff -> tls_accept -> read_request -> (run_exchange: resolve_route -> connect_upstream ->
// forward_request -> relay_response | tunnel), repeated while keep-alive holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "connect/core/published.hpp"
#include "connect/coro/task.hpp"
#include "connect/inspect/store.hpp"
#include "connect/io/stream.hpp"
#include "connect/proxy/server.hpp"
#include "connect/route/table.hpp"
#include "exchange_heads.hpp"
#include "upstream_connector.hpp"

namespace cproxy::proxy {

// What every connection of a server shares (read-only while it runs).
struct server_env {
  const server_options* options;
  std::uint16_t port;
  inspect::store* inspector = nullptr;  // the request inspector's store; null when it is off
};

// One worker's state: its upstream connections and route reader, touched only on its thread.
struct worker_env {
  explicit worker_env(const published<route::table>& source) : routes(source) {}
  published<route::table>::reader routes;
  std::unique_ptr<upstream_connector> upstreams;  // set when the worker starts (it needs the context)
  bool splice = false;                            // the worker's backend splices without copying
  bool draining = false;                          // stop(): finish the request in progress, then close
  io::context* ctx = nullptr;
  unsigned index = 0;                            // the worker's number: its shard of the inspector's store
  std::unordered_set<io::stream*> idle_clients;  // waiting for a next request: closed at once on drain
  // Records the inspector's store let go, for the next exchanges: as many as requests may begin between
  // two that end (a loop turn's worth), so that a busy worker allocates none.
  std::vector<std::shared_ptr<inspect::record>> spare_records;
  exchange_heads_pool heads;  // the heads' storage of the exchanges that ended, for the next ones
};

// A client going idle between requests lends its own node to the idle set and takes it back after, so
// the keep-alive loop allocates nothing for it.
using idle_mark = std::unordered_set<io::stream*>::node_type;
inline void enter_idle(worker_env* w, io::stream* s, idle_mark* mark) {
  if (mark->empty()) {
    w->idle_clients.insert(s);
    return;
  }
  mark->value() = s;
  w->idle_clients.insert(std::move(*mark));
}
inline void leave_idle(worker_env* w, io::stream* s, idle_mark* mark) {
  *mark = w->idle_clients.extract(s);
}

coro::task<void> serve_connection(io::socket client, const server_env* env, worker_env* worker);
// The requests of a client whose stream is ready (plain, or TLS after its handshake): what
// serve_connection does after sniff and tls_accept. Tests drive the pipeline in process through it.
coro::task<void> serve_client(io::stream* client, std::string client_ip, bool secure, const server_env* env,
                              worker_env* worker);
// One HTTP/2 stream (an h2::h2_stream) of the connection `parent`, through the same pipeline; `head` is
// its request head as HTTP/1.1 bytes, taken from the stream (h2_stream::take_head).
struct client_side;
coro::task<void> serve_h2_stream(io::stream* s, const client_side* parent, std::string head);

}  // namespace cproxy::proxy
