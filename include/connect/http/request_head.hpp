// Parsing one HTTP/1.x request head from bytes (sans-I/O, Boost.Beast's parser underneath): no sockets
// here, so it is tested with byte arrays.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cproxy::http {

struct request_head {
  std::string method;
  std::string target;
  std::string host;  // as sent, empty when absent
  unsigned version = 11;  // 10 or 11
  bool keep_alive = true;
  bool has_body = false;  // Content-Length > 0 or chunked
};

enum class parse_status { complete, need_more, bad_request, too_large };

inline constexpr std::size_t header_limit = 64 * 1024;

// On `complete`, `consumed` is the length of the head within `bytes` (what follows is the body or the
// next request).
parse_status parse_request_head(std::string_view bytes, request_head& out, std::size_t& consumed);

}  // namespace cproxy::http
