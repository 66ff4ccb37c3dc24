// read_head: reads one HTTP head, a request from the client or a response from the upstream, into a
// connection's buffer and parses it once a blank line may have arrived. The one head reader of both
// directions; what to parse it as is the caller's `head_target`.
#pragma once

#include <chrono>
#include <string>

#include "byte_buffer.hpp"
#include "connect/coro/task.hpp"
#include "connect/http/head.hpp"
#include "connect/io/stream.hpp"

namespace cproxy::proxy {

using clock = std::chrono::steady_clock;

// A request (`request` set) or the response to `for_request` (`response` set).
struct head_target {
  http::request_head* request = nullptr;
  http::response_head* response = nullptr;
  const http::request_head* for_request = nullptr;
};

struct head_result {
  enum class status { complete, closed, timeout, invalid, too_large } what = status::closed;
  std::size_t length = 0;  // the head's bytes at the front of the buffer, when complete
  std::string error;       // why it is invalid, for the log
};

// Reads from `from` into `buf` until `target` holds a whole head, the deadline passes, or the peer
// closes. Bytes past the head stay in `buf`.
coro::task<head_result> read_head(io::stream* from, byte_buffer* buf, head_target target,
                                  clock::time_point deadline);

// Appends what one read of `s` brings (up to 16 KiB) to `buf`.
coro::task<io::io_result> read_more(io::stream* s, byte_buffer* buf, io::duration timeout);
// read_more for a keep-alive connection waiting for its next request, with `buf` empty: its storage is
// freed first and the bytes arrive in a buffer leased from the stream (io_uring: a provided buffer),
// so an idle connection holds no read buffer of its own.
coro::task<io::io_result> read_idle(io::stream* s, byte_buffer* buf, io::duration timeout);

// The time left until `deadline`, rounded up: a timer that fires before the deadline would be read as
// the deadline passing too early.
io::duration left_until(clock::time_point deadline);

}  // namespace cproxy::proxy
