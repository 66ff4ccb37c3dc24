// serve_h2: the HTTP/2 front-end of one client connection (ALPN h2 on the HTTPS port, the
// prior-knowledge preface on the plain port). nghttp2's sans-I/O session is driven by the connection's
// io::stream; every stream runs the HTTP/1.1 pipeline through an h2_stream.
#pragma once

#include "connect/coro/task.hpp"

namespace cproxy::proxy {
struct client_side;
}

namespace cproxy::proxy::h2 {

// Serves the connection until it ends; bytes already read from it (the sniffed preface) are in c->in.
coro::task<void> serve_h2(client_side* c);

}  // namespace cproxy::proxy::h2
