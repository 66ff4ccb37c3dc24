// What the proxy changes in a head as it passes (sans-I/O): X-Forwarded-*, hop-by-hop removal and the
// loop-detection headers on requests; hop-by-hop removal and x-private-connect-proxy on responses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "connect/http/head.hpp"

namespace cproxy::http {

struct forward_context {
  std::string client_address;  // X-Forwarded-For
  std::uint16_t proxy_port = 0;
  std::string_view scheme = "http";
  std::string route_name;
};

// Loop detection: x-private-connect-proxy counts hops, x-private-connect-route lists the routes passed.
struct hop_trail {
  unsigned hops = 1;   // what this request carries onwards
  std::string routes;  // "api,web"
  bool loop = false;   // the route was passed already, or hops reached max_hops
};
inline constexpr unsigned max_hops = 5;
hop_trail follow_trail(const request_head& head, std::string_view route_name);

// The request head as the upstream receives it (origin-form target, rewritten fields, CRLF CRLF), in
// `out`: what it held is replaced and its storage reused.
void forward_request_head(const request_head& head, const forward_context& ctx, const hop_trail& trail,
                          std::string& out);
inline std::string forward_request_head(const request_head& head, const forward_context& ctx,
                                        const hop_trail& trail) {
  std::string out;
  forward_request_head(head, ctx, trail, out);
  return out;
}

// The response head as the client receives it, in `out` as above. `keep_alive` decides the Connection
// field the proxy sends; an upgrade (101) keeps Connection/Upgrade as the upstream sent them.
// `unchunked`: the proxy removes the chunked coding (an HTTP/1.0 client), so Transfer-Encoding and
// Trailer go too.
void client_response_head(const response_head& head, bool keep_alive, bool unchunked, std::string& out);
inline std::string client_response_head(const response_head& head, bool keep_alive, bool unchunked = false) {
  std::string out;
  client_response_head(head, keep_alive, unchunked, out);
  return out;
}

}  // namespace cproxy::http
