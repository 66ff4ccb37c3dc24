// Raw HTTP/2 frames (RFC 9113) for the cases no well-behaved client can play: malformed streams, floods,
// a stream whose reader never reads. Header blocks are HPACK literals (RFC 7541 section 6.2), so nothing
// here needs a library; frames are read back through raw_client, every read bounded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/raw_client.hpp"

namespace cproxy::http_test::h2 {

inline constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum frame_type : std::uint8_t {
  data = 0,
  headers = 1,
  rst_stream = 3,
  settings = 4,
  ping = 6,
  goaway = 7,
  window_update = 8,
  continuation = 9
};
enum flag : std::uint8_t { end_stream = 1, ack = 1, end_headers = 4 };
enum error_code : std::uint32_t { no_error = 0, protocol_error = 1, enhance_your_calm = 0xb };

inline std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                         std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string out{static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
                  static_cast<char>(type), static_cast<char>(flags)};
  out += be32(stream & 0x7fffffffu);
  out += payload;
  return out;
}

// An HPACK integer with an N-bit prefix; `high` holds the bits above the prefix in the first byte.
inline std::string hpack_int(std::uint32_t v, int prefix_bits, std::uint8_t high) {
  const std::uint32_t max = (1u << prefix_bits) - 1;
  std::string out;
  if (v < max) {
    out += static_cast<char>(high | v);
    return out;
  }
  out += static_cast<char>(high | max);
  v -= max;
  while (v >= 128) {
    out += static_cast<char>((v % 128) + 128);
    v /= 128;
  }
  out += static_cast<char>(v);
  return out;
}

inline std::string hpack_string(std::string_view s) {
  return hpack_int(static_cast<std::uint32_t>(s.size()), 7, 0) + std::string(s);
}

// A literal field, not indexed (0x00), or added to the dynamic table (`indexed`: 0x40).
inline std::string literal(std::string_view name, std::string_view value, bool indexed = false) {
  return std::string(1, static_cast<char>(indexed ? 0x40 : 0x00)) + hpack_string(name) + hpack_string(value);
}

// A field taken from the tables by index (static 1..61, dynamic from 62).
inline std::string indexed_field(std::uint32_t index) {
  return hpack_int(index, 7, 0x80);
}

using fields = std::vector<std::pair<std::string, std::string>>;

inline std::string block(const fields& f) {
  std::string out;
  for (const auto& [name, value] : f) out += literal(name, value);
  return out;
}

// The request fields of a GET to `authority` `path`.
inline fields get_request(std::string_view authority, std::string_view path) {
  return {{":method", "GET"},
          {":scheme", "http"},
          {":authority", std::string(authority)},
          {":path", std::string(path)}};
}

inline std::string settings_frame(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& entries) {
  std::string payload;
  for (const auto& [id, value] : entries) {
    payload += static_cast<char>(id >> 8);
    payload += static_cast<char>(id);
    payload += be32(value);
  }
  return frame(settings, 0, 0, payload);
}

inline std::string window_update_frame(std::uint32_t stream, std::uint32_t increment) {
  return frame(window_update, 0, stream, be32(increment));
}

struct frame_in {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;
  std::string payload;

  std::uint32_t error() const {  // RST_STREAM's code, or GOAWAY's
    const std::size_t at = type == goaway ? 4 : 0;
    if (payload.size() < at + 4) return 0xffffffffu;
    return (std::uint32_t(std::uint8_t(payload[at])) << 24) |
           (std::uint32_t(std::uint8_t(payload[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(payload[at + 2])) << 8) | std::uint32_t(std::uint8_t(payload[at + 3]));
  }
};

// The next frame, or nullopt at EOF or the deadline.
inline std::optional<frame_in> read_frame(raw_client& c, ms deadline = 10s) {
  if (c.buffer().size() < 9 && !c.read_at_least(9, deadline)) return std::nullopt;
  const std::string& b = c.buffer();
  const std::size_t n = (std::size_t(std::uint8_t(b[0])) << 16) | (std::size_t(std::uint8_t(b[1])) << 8) |
                        std::size_t(std::uint8_t(b[2]));
  if (c.buffer().size() < 9 + n && !c.read_at_least(9 + n, deadline)) return std::nullopt;
  frame_in f;
  f.type = std::uint8_t(b[3]);
  f.flags = std::uint8_t(b[4]);
  f.stream = ((std::uint32_t(std::uint8_t(b[5])) << 24) | (std::uint32_t(std::uint8_t(b[6])) << 16) |
              (std::uint32_t(std::uint8_t(b[7])) << 8) | std::uint32_t(std::uint8_t(b[8]))) &
             0x7fffffffu;
  f.payload = b.substr(9, n);
  c.buffer().erase(0, 9 + n);
  return f;
}

// The :status of a response HEADERS block as the proxy encodes it: nghttp2 indexes the common statuses
// (static table 8..14) and sends others as a literal with the indexed name 8.
inline int status_of(std::string_view block) {
  if (block.empty()) return 0;
  const auto first = std::uint8_t(block[0]);
  static constexpr int indexed_status[] = {200, 204, 206, 304, 400, 404, 500};
  if (first >= 0x88 && first <= 0x8e) return indexed_status[first - 0x88];
  // Literal with an indexed name (:status is 8): 0x08 (without indexing), 0x48 (incremental), 0x18 (never).
  if ((first & 0x0f) == 8 && block.size() >= 5 && (std::uint8_t(block[1]) & 0x80) == 0)
    return std::stoi(std::string(block.substr(2, std::uint8_t(block[1]))));
  return -1;  // a Huffman-coded literal: the caller reads the status another way
}

}  // namespace cproxy::http_test::h2
