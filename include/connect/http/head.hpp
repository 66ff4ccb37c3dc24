// HTTP/1.x message heads parsed from bytes (sans-I/O): Boost.Beast's parser checks the start line's
// grammar, and a strict pass over the raw bytes checks the fields and applies the RFC 9112 rules a proxy
// must enforce so that nothing ambiguous is ever forwarded (request smuggling). Tested with byte arrays
// in tests/unit/http.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cproxy::http {

inline constexpr std::size_t header_limit = 64 * 1024;

struct field {
  std::string name;   // as sent
  std::string value;  // trimmed
};

// How a message's body is delimited.
enum class framing { none, length, chunked, until_close };

struct request_head {
  std::string method;
  std::string target;
  unsigned version = 11;  // 10 or 11
  std::vector<field> fields;
  std::string host;       // the Host field ("" when absent)
  std::string authority;  // absolute-form or CONNECT target authority ("" for origin-form)
  bool absolute_form = false;
  framing body = framing::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  bool upgrade_websocket = false;
  bool expect_continue = false;

  bool is_connect() const noexcept { return method == "CONNECT"; }
};

struct response_head {
  unsigned status = 0;
  std::string reason;
  unsigned version = 11;
  std::vector<field> fields;
  framing body = framing::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
};

enum class parse_status { complete, need_more, invalid, too_large };

struct parse_result {
  parse_status status = parse_status::need_more;
  std::size_t consumed = 0;  // the head's length when complete
  std::string error;         // why, when invalid (for the log, never sent verbatim)
};

// `out` may hold an earlier head: it is overwritten whole, and its strings and field vector keep their
// storage (a connection's heads allocate nothing once warm). Unless complete, `out` holds no head.
parse_result parse_request(std::string_view bytes, request_head& out);
// `request_method` decides the body of a response to HEAD (none) and CONNECT.
parse_result parse_response(std::string_view bytes, std::string_view request_method, response_head& out);

// Case-insensitive comparison of ASCII header names and tokens.
bool iequals(std::string_view a, std::string_view b) noexcept;
// True if the comma-separated list `value` contains `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) noexcept;

}  // namespace cproxy::http
