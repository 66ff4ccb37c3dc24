// server: the data path's start/stop handle. The control plane binds the listening socket (so it can
// report a taken port, or receive the socket from a predecessor) and hands it over; the server runs
// the workers and answers requests until stop().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "connect/io/backend.hpp"
#include "connect/io/listen_socket.hpp"

namespace cproxy::proxy {

struct server_options {
  io::backend_kind io = io::backend_kind::asio;
  unsigned threads = 1;
  std::string version;
  std::string started_at;  // ISO-8601 UTC, as in the status object
  io::duration header_timeout{30'000};
  io::duration idle_timeout{60'000};
};

class server {
 public:
  // Starts the workers on `listener`. Throws std::system_error if a worker cannot start.
  server(io::listen_socket listener, server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Stops accepting, gives running requests `grace`, then closes what is left. Idempotent.
  void stop(io::duration grace);
  std::uint16_t port() const noexcept;

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace cproxy::proxy
