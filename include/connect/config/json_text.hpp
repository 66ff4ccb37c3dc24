// JSON reading shared by the route files (config.json, active-routes.json): parsing with a line and
// column in the error, numbers written as whole doubles, values shown briefly in messages. Private to
// src/control, so that no public header carries Boost.JSON types.
#pragma once

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "connect/config/config_file.hpp"

namespace cproxy::control::json_text {
namespace json = boost::json;

inline std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// The JSON a problem was found in, short enough for one log line.
inline std::string shown(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Integers, and doubles that hold one exactly (5.0, 1e3): tools that write numbers through a double
// should not fail a check a person reading the file would pass.
inline std::optional<long long> whole_number(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<long long>::max()))
      return std::nullopt;
    return static_cast<long long>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    // 2^53: past it a double no longer holds every integer, and the range check below stays exact.
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
        d == static_cast<double>(static_cast<long long>(d)))
      return static_cast<long long>(d);
  }
  return std::nullopt;
}

// The JSON parse both files need; the error text has no file name (callers prefix it).
inline std::optional<json::value> parse_json(std::string_view text, std::string& error) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    error = "invalid JSON: the file is empty";
    return std::nullopt;
  }
  json::stream_parser parser;
  json::error_code ec;
  // write() stops at the first bad byte and says how far it got: that offset gives the line and column.
  std::size_t used = parser.write(text.data(), text.size(), ec);
  if (!ec) {
    parser.finish(ec);
    used = text.size();
  }
  if (ec) {
    error = "invalid JSON at " + text_position(text, used) + ": " + ec.message();
    return std::nullopt;
  }
  return parser.release();
}

}  // namespace cproxy::control::json_text
