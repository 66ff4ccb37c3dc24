// client_side: the downstream half of one client connection, shared by the stages of every exchange
// on it: the stream to the client, the bytes read from it and not used yet, and the worker it runs on.
#pragma once

#include <string>
#include <string_view>

#include "byte_buffer.hpp"
#include "connect/io/stream.hpp"
#include "connection.hpp"

namespace cproxy::proxy {

struct client_side {
  const server_env* env = nullptr;
  worker_env* w = nullptr;
  io::stream* stream = nullptr;  // a socket_stream, or a tls_stream on an HTTPS port; owned by the front-end
  bool secure = false;
  byte_buffer in;  // client bytes read but not used yet (the rest of a head, a body, the next request)
  std::string ip;  // the client's address, for X-Forwarded-For and the log
  std::string_view protocol = "http/1.1";  // "h2" for a stream of an HTTP/2 connection
  idle_mark idle;                          // its node of worker_env::idle_clients while it is not idle
  // An HTTP/2 stream carries one exchange: after it nothing is read for a next request (that read would
  // only find the stream's end, at the cost of a read buffer and an inspector record per stream).
  bool one_exchange = false;
};

}  // namespace cproxy::proxy
