// exchange: one request and its response as they pass through the proxy: what the front-end read,
// where it went, when each step happened, how many bytes moved and how it ended. A protocol front-end
// (HTTP/1.1 today, each HTTP/2 stream next) creates one per request and the stages fill it in. It is
// also the record the request inspector will capture once the exchange ends (see record_exchange in
// docs/architecture.md) and what restart-holding will hold between connect attempts.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "connect/http/head.hpp"
#include "connect/inspect/record.hpp"
#include "connect/route/table.hpp"
#include "exchange_heads.hpp"
#include "failure.hpp"

namespace cproxy::proxy {

struct exchange_timings {
  using time_point = std::chrono::steady_clock::time_point;
  time_point started;     // the request head was complete
  time_point connected;   // an upstream connection was ready (dialled or taken from the pool)
  time_point first_byte;  // the response head arrived from the upstream
  time_point finished;    // the last byte went to the client, or the exchange failed
};

struct exchange {
  std::string_view protocol = "http/1.1";
  // Its heads' storage, leased from the worker once its request begins (empty until then).
  heads_lease heads;
  const http::request_head* request = nullptr;  // &heads->request for an exchange being served
  std::shared_ptr<const route::table> routes;   // the snapshot this request is resolved against
  const route::route* route = nullptr;          // in `routes`; null when the proxy answered itself
  exchange_timings times;
  std::uint64_t request_body_bytes = 0;
  std::uint64_t response_bytes = 0;  // head and body, as sent to the client
  unsigned status = 0;               // what the client got; 0: no response was sent
  bool reused_upstream = false;      // the upstream connection came from the pool
  std::optional<failure> failed;     // how it failed, when it did
  // The inspector's record being filled (inspect_capture.hpp); null when capture is off.
  std::shared_ptr<inspect::record> capture;
  std::uint64_t capture_limit = 0;  // bytes kept per body
};

}  // namespace cproxy::proxy
