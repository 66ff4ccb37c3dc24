// What `connect proxy start` was asked to do, after parsing and validation.
#pragma once

#include <cstdint>
#include <string>

#include "connect/io/select_backend.hpp"

namespace cproxy::control {

struct proxy_options {
  std::uint16_t port = 3456;
  std::string bind = "127.0.0.1";
  io::backend_choice io = io::backend_choice::automatic;
  unsigned threads = 0;  // 0: one per online CPU
  bool foreground = false;
  std::string hub = "https://hub.privateconnect.co";
};

// Runs the proxy in this process until SIGINT or SIGTERM; returns the exit code.
int run_foreground(const proxy_options& options);

}  // namespace cproxy::control
