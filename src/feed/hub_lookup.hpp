// Name lookup for the hub client: getaddrinfo() blocks, so it runs on a thread of its own and the
// context's thread waits for it with a timer, never longer than the request's deadline. A lookup the
// wait gives up on finishes alone and frees itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "connect/coro/task.hpp"
#include "connect/io/endpoint.hpp"

namespace cproxy::io {
class context;
}

namespace cproxy::control::hub_http {

struct lookup_result {
  std::error_code ec;  // hub_errc: cancelled, timed_out, lookup_failed
  std::string detail;  // with ec: for the log line
  std::vector<io::endpoint> addresses;
};

// The addresses of `host` (a DNS name) with `port`, within `timeout`. On `ctx`'s thread.
coro::task<lookup_result> lookup(io::context* ctx, std::string host, std::uint16_t port,
                                 std::chrono::milliseconds timeout);

}  // namespace cproxy::control::hub_http
