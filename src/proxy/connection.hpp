// One client connection: read a request head, answer it, repeat while keep-alive holds. Routing to
// upstreams is not built yet: the proxy answers its own page and names unknown services.
#pragma once

#include "connect/coro/task.hpp"
#include "connect/io/socket.hpp"
#include "connect/proxy/server.hpp"

namespace cproxy::proxy {

struct connection_env {
  const server_options* options;
  std::uint16_t port;
};

coro::task<void> serve_connection(io::socket client, const connection_env* env);

}  // namespace cproxy::proxy
