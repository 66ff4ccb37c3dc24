// server: the data path's start/stop handle. The control plane binds the listening socket (so it can
// report a taken port, or receive the socket from a predecessor), owns the route snapshot publisher,
// and hands both over; the server runs the workers and answers requests until stop().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "connect/core/published.hpp"
#include "connect/inspect/store.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/listen_socket.hpp"
#include "connect/route/table.hpp"
#include "connect/tls/server_context.hpp"

namespace cproxy::proxy {

struct timeouts {
  io::duration header{30'000};          // a request head, once started
  io::duration connect{5'000};          // an upstream connect
  io::duration idle{60'000};            // a keep-alive connection between requests
  io::duration response{60'000};        // the upstream's first response byte
  io::duration tunnel_idle{3'600'000};  // a WebSocket or CONNECT tunnel with no bytes either way
  io::duration handshake{10'000};       // a TLS handshake, from its first byte
  io::duration hold{10'000};            // a refused upstream that may be restarting is retried (0: never)
  // Which refused upstreams are held (product.md, "Restarting upstreams"): one that answered within
  // `hold_answered`, or that the proxy first saw within `hold_appeared`. Tests shorten them.
  io::duration hold_answered{300'000};
  io::duration hold_appeared{30'000};
};

struct server_options {
  io::backend_kind io = io::backend_kind::asio;
  unsigned threads = 1;
  std::string version;
  std::string started_at;  // ISO-8601 UTC, as in the status object
  proxy::timeouts timeouts;
  std::uint64_t max_body = 0;  // request bodies over this many bytes get 413; 0: no limit
  bool access_log = true;      // one log line per request (off with --quiet)
  // HTTPS: every connection speaks TLS (a plain HTTP request gets a redirect to https). null: plain.
  std::shared_ptr<tls::server_context> tls;
  inspect::options inspect;  // the request inspector (product.md, Inspector)
};

class server {
 public:
  // Starts the workers on `listener`; `routes` must outlive the server. Throws std::system_error if a
  // worker cannot start.
  server(io::listen_socket listener, server_options options, const published<route::table>& routes);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Stops accepting, closes idle keep-alive connections, gives running requests `grace`, then closes
  // what is left. Idempotent.
  void stop(io::duration grace);
  // Stops accepting (connections accepted already go on); returns once no accept is in flight.
  void stop_accepting();
  std::uint16_t port() const noexcept;
  // The listening socket, for a handover to a successor (--replace). Stays owned by the server.
  io::native_handle_type listen_handle() const noexcept;
  // The status object, as the own page and proxy.sock answer it.
  std::string status_json() const;

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace cproxy::proxy
