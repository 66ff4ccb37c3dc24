// hub_poller: asks the hub for its services once at start and every period after, on a thread of its
// own that runs a control-plane io::context (the hub client's sockets and timers live there). Hands each
// usable answer's routes to `publish`; logs an outage once and its recovery once. stop() cancels every
// operation on the context, so it never waits for the hub.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connect/io/backend.hpp"
#include "connect/route/table.hpp"
#include "route_feed_http.hpp"

namespace cproxy::control {

struct hub_poll_config {
  hub_http::url where;
  std::string url_text;  // as configured, for the log lines
  std::string api_key;   // sent, never logged
  std::chrono::milliseconds interval{10'000};
  std::chrono::milliseconds timeout{5'000};
  io::backend_kind io = io::backend_kind::asio;
  std::size_t kept = 0;  // hub routes held before the first answer (handed over): what an outage keeps
};

class hub_poller {
 public:
  using publisher = std::function<void(std::vector<route::route>)>;
  hub_poller(hub_poll_config config, publisher publish);
  ~hub_poller();  // stop()s
  hub_poller(const hub_poller&) = delete;
  hub_poller& operator=(const hub_poller&) = delete;

  // Starts the thread. Throws std::system_error if it cannot.
  void start();
  // Cancels the request or the wait in progress and joins the thread. Idempotent.
  void stop();

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace cproxy::control
