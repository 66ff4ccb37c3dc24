// The hub client's sans-I/O pieces: the hub URL (Boost.URL) and the reader of one response (Beast's
// response parser), strict about framing and bounded in size. hub_client.hpp does the I/O. Private to
// src/feed; not a general HTTP client (no redirects, no keep-alive, no proxies).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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

// Follows one response to a GET: feed() what arrives, finish() at the end of the stream. The body ends
// by Content-Length, chunked framing or the close; other transfer codings, a body over max_body or a
// head over http::header_limit are errors, worded for the one log line an outage gets.
class response_reader {
 public:
  enum class status { more, done, invalid };

  response_reader();
  ~response_reader();
  response_reader(const response_reader&) = delete;
  response_reader& operator=(const response_reader&) = delete;

  status feed(std::string_view bytes);
  status finish();  // the peer closed
  // True while only the close can end the body (no length, not chunked): over TLS, only a close_notify
  // may, or a cut connection would pass for a whole answer.
  bool ends_at_close() const noexcept;

  unsigned code() const noexcept;
  const std::string& body() const noexcept;
  const std::string& error() const noexcept { return error_; }

 private:
  status fail(std::string why);
  status check_head();

  struct parser;
  std::unique_ptr<parser> parser_;
  enum class phase { head, body, done, failed };
  phase phase_ = phase::head;
  std::string pending_;  // bytes the parser has not taken yet (a head or chunk line in pieces)
  bool any_bytes_ = false;
  std::string error_;
};

}  // namespace cproxy::control::hub_http
