// Shorthands the test files share: build a request, do one exchange on a fresh connection, parse a JSON
// body. Kept apart from raw_client so that the client stays a plain byte pipe.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/raw_client.hpp"

namespace cproxy::http_test {

// "METHOD target HTTP/1.1", Host, the extra lines (each ending in CRLF), Content-Length when there is a
// body, the blank line, the body.
// The Accept line of a browser's navigation (Chromium's): the proxy answers its errors to it as HTML pages.
inline constexpr std::string_view browser_accept =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n";

inline std::string request(std::string_view method, std::string_view host, std::string_view target,
                           std::string_view extra_lines = "", std::string_view body = "") {
  std::string out = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra_lines);
  if (!body.empty()) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "\r\n";
  out += body;
  return out;
}

struct round_trip_result {
  std::optional<http_response> response;
  std::string error;  // why there is no response
};

// Connects, sends `bytes`, reads the final response (interim 1xx skipped).
inline round_trip_result round_trip(unsigned port, std::string_view bytes, ms deadline = 10s,
                                    bool head = false) {
  raw_client c(port);
  if (!c.ok()) return {std::nullopt, c.error()};
  if (!c.send(bytes)) return {std::nullopt, c.error()};
  auto r = c.read_final_response(deadline, head);
  return {std::move(r), c.error()};
}

inline std::optional<boost::json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

// o[key], or null when absent: checks compare and print it directly.
inline boost::json::value member(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return v ? *v : boost::json::value();
}

// The head's bytes, readable, for failure messages.
inline std::string dump(const message_head& h) {
  return printable(h.raw, 4000);
}

}  // namespace cproxy::http_test
