// chunked_scanner: follows a chunked body (RFC 9112 section 7.1) byte by byte as it is relayed
// unchanged, so the proxy knows where the message ends and rejects a malformed or overflowing one
// instead of forwarding it. Sans-I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cproxy::http {

class chunked_scanner {
 public:
  enum class status { more, done, invalid };

  // Looks at `bytes`; `used` is how many of them belong to this body (all of them unless the body
  // ends inside). After `done`, the bytes past `used` are the next message's.
  // With `data`, the chunks' payload is appended to it (to unchunk a body for an HTTP/1.0 client).
  // With `trailers`, the trailer section's field lines are appended to it, each ending in "\n" (for
  // the HTTP/2 adapter, which sends them as a trailing HEADERS frame).
  status feed(std::string_view bytes, std::size_t& used, std::string* data = nullptr,
              std::string* trailers = nullptr);
  // Payload bytes seen so far (chunk data, without the framing).
  std::uint64_t payload_bytes() const noexcept { return payload_; }

 private:
  enum class state {
    size,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer,
    trailer_lf,
    last_lf,
    done
  };
  state state_ = state::size;
  std::uint64_t remaining_ = 0;
  std::uint64_t payload_ = 0;
  int digits_ = 0;
};

}  // namespace cproxy::http
