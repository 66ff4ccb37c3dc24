// The hub poller's HTTP client: one GET over a fresh connection (plain TCP, or TLS verified against the
// system trust store), strict about the answer's framing, bounded in time and size, and cut short when
// a cancel descriptor becomes readable. Private to src/control; not a general HTTP client (no
// redirects, no keep-alive, no proxies).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connect/http/chunked.hpp"
#include "connect/http/head.hpp"

namespace cproxy::control::hub_http {

inline constexpr std::size_t max_body = std::size_t{1} << 20;

// "http://HOST[:PORT][/PATH]" or "https://...", split for dialling. No userinfo, query or fragment.
struct url {
  bool tls = false;
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 0;
  std::string authority;  // the Host header: as written, brackets kept, default port dropped
  std::string path;       // "" or "/base", without a trailing slash
};
std::optional<url> parse_url(std::string_view text, std::string& error);

// Follows one response (sans-I/O): feed() what arrives, finish() at the end of the stream. The body ends
// by Content-Length, chunked framing or the close; other transfer codings, a body over max_body or a
// head over http::header_limit are errors.
class response_reader {
 public:
  enum class status { more, done, invalid };

  status feed(std::string_view bytes);
  status finish();  // the peer closed

  unsigned code() const noexcept { return head_.status; }
  const std::string& body() const noexcept { return body_; }
  const std::string& error() const noexcept { return error_; }

 private:
  status fail(std::string why);
  status take_body(std::string_view bytes);

  enum class phase { head, body, done, failed };
  phase phase_ = phase::head;
  std::string head_bytes_;
  http::response_head head_;
  http::chunked_scanner chunks_;
  std::string body_;
  std::string error_;
};

struct fetch_result {
  bool ok = false;  // a whole response arrived (any status)
  bool cancelled = false;
  unsigned status = 0;
  std::string body;
  std::string error;  // when !ok: what failed, for one log line
};

// GET `target` (absolute path) from `where` with the extra `headers`, within `timeout` in all (name
// lookup, connect, TLS handshake, request, response). `cancel_fd` (or -1): a descriptor that turns
// readable to abandon the request.
fetch_result get(const url& where, const std::string& target,
                 const std::vector<std::pair<std::string, std::string>>& headers,
                 std::chrono::milliseconds timeout, int cancel_fd);

}  // namespace cproxy::control::hub_http
