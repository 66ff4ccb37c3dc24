// The hub client: one GET over a fresh connection on an io::context, with the project's own sockets:
// the name looked up off the context's thread, io::socket connect, a client-mode tls::tls_stream
// (system trust store, SNI, host name verification, TLS 1.2+), the answer through response_reader.
// Bounded in time (one deadline for the whole request) and size. Failures are hub_errc error codes;
// cancelling every operation on the context (context::cancel_all, as the poller's stop does) ends a
// request in flight with hub_errc::cancelled.
#pragma once

#include <chrono>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "connect/coro/task.hpp"
#include "route_feed_http.hpp"

namespace cproxy::io {
class context;
}

namespace cproxy::control::hub_http {

enum class hub_errc {
  cancelled = 1,         // the context cancelled the request (a stop)
  timed_out,             // the deadline passed
  lookup_failed,         // the host name has no address
  connect_failed,        // no address accepted the connection
  tls_failed,            // the handshake failed for another reason than the certificate
  certificate_rejected,  // the hub's certificate did not verify (trust, name, dates)
  transfer_failed,       // sending the request or reading the answer broke off
  bad_response,          // the answer is not a response the client reads (framing, size)
};
const std::error_category& hub_category() noexcept;
inline std::error_code make_error_code(hub_errc e) noexcept {
  return {static_cast<int>(e), hub_category()};
}

using header_list = std::vector<std::pair<std::string, std::string>>;

struct fetch_result {
  std::error_code ec;  // hub_errc; none when a whole response arrived (any status)
  std::string detail;  // with ec: what failed, worded for the one log line an outage gets
  unsigned status = 0;
  std::string body;
};

// GET `target` (an absolute path) from `where` with the extra `headers`, within `timeout` in all (name
// lookup, connect, TLS handshake, request, response). On `ctx`'s thread.
coro::task<fetch_result> get(io::context* ctx, url where, std::string target, header_list headers,
                             std::chrono::milliseconds timeout);

}  // namespace cproxy::control::hub_http

template <>
struct std::is_error_code_enum<cproxy::control::hub_http::hub_errc> : std::true_type {};
