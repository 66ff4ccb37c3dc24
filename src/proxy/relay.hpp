// Moving bodies and tunnels between the client and the upstream. Each relay starts with the bytes
// already read past a head (`pending`), forwards everything as soon as it arrives (a stream is never
// held back to fill a buffer), and splices where both ends are plain sockets and the backend can.
#pragma once

#include <cstdint>
#include <system_error>

#include "byte_buffer.hpp"
#include "connect/coro/task.hpp"
#include "connect/io/stream.hpp"

namespace cproxy::proxy {

struct relay_outcome {
  std::error_code read_error;   // on the source side (EOF too early counts: connection_aborted)
  std::error_code write_error;  // on the destination side
  std::uint64_t bytes = 0;
  bool ok() const noexcept { return !read_error && !write_error; }
};

// Exactly `length` bytes (a Content-Length body).
coro::task<relay_outcome> relay_length(io::stream* from, byte_buffer* pending, io::stream* to,
                                       std::uint64_t length, io::duration idle, bool may_splice);
// A chunked body, checked as it passes; a malformed one ends with read_error = bad_message. Bytes past
// its end stay in `pending`. With `unchunk`, only the payload goes on (for an HTTP/1.0 client, which
// cannot read chunked: the end of the body is then the end of the connection).
// `limit` (0: none) bounds the payload: past it the relay stops with read_error = file_too_large.
coro::task<relay_outcome> relay_chunked(io::stream* from, byte_buffer* pending, io::stream* to,
                                        io::duration idle, bool unchunk = false, std::uint64_t limit = 0);
// Until the source closes (a response without length). `stop` (a tunnel's failed flag) ends it before
// its next read once set: a read started after the tunnel cancelled its ends would wait for `idle`.
coro::task<relay_outcome> relay_until_eof(io::stream* from, byte_buffer* pending, io::stream* to,
                                          io::duration idle, const bool* stop = nullptr);
// The bytes a tunnel moved each way (those already read past the heads included), for the exchange's
// record: a tunnel is one exchange whose sizes are what went through it.
struct tunnel_bytes {
  std::uint64_t to_upstream = 0;
  std::uint64_t to_client = 0;
};
// Both directions until both ends have closed, or either fails, or nothing moves for `idle`.
coro::task<tunnel_bytes> tunnel(io::stream* client, byte_buffer* client_pending, io::stream* upstream,
                                byte_buffer* upstream_pending, io::duration idle, bool may_splice);

}  // namespace cproxy::proxy
