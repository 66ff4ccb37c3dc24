// Test-side HTTP/1.1 pieces shared by the raw client and the in-process upstreams: a head split into its
// start line and fields as received, case-insensitive lookups, and an incremental chunked decoder.
// Lenient on purpose: it reads what the proxy sends so that tests can judge it; it is no conforming parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cproxy::http_test {

struct field {
  std::string name;
  std::string value;
};

bool iequals(std::string_view a, std::string_view b);
std::string lower(std::string_view s);
std::string_view trim(std::string_view s);

struct message_head {
  std::string raw;         // the exact bytes, final CRLFCRLF included
  std::string start_line;  // without its CRLF
  std::vector<field> fields;

  // The first field named `name` (case-insensitive), value trimmed.
  std::optional<std::string> get(std::string_view name) const;
  std::size_t count(std::string_view name) const;
  // True if a comma-separated list field `name` holds `token` (case-insensitive).
  bool has_token(std::string_view name, std::string_view token) const;
};

// `raw` is a whole head ending in CRLFCRLF. Lines split at CRLF, fields at the first colon.
message_head parse_head(std::string raw);

// Decodes a chunked body incrementally: feed() consumes bytes from the front of `in` and says whether the
// body (last chunk and trailer section) is complete.
class chunked_decoder {
 public:
  enum class status { need_more, complete, bad };
  status feed(std::string& in);
  std::string body;
  std::vector<field> trailers;

 private:
  enum class state { size, data, data_crlf, trailer, done };
  state state_ = state::size;
  std::uint64_t remaining_ = 0;
};

// One chunk: size line, data, CRLF.
std::string encode_chunk(std::string_view data);

// A chunked encoding of `body` in chunks of `chunk` bytes, with `trailers` lines (each "Name: value").
std::string encode_chunked(std::string_view body, std::size_t chunk,
                           const std::vector<std::string>& trailers = {});

}  // namespace cproxy::http_test
