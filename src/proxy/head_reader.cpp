// Implementation of head_reader.hpp.
#include "head_reader.hpp"

#include <algorithm>

#include "connect/io/loop_clock.hpp"

namespace cproxy::proxy {
namespace {

// One read of a head at a time: the size of block_cache's blocks, so a buffer of it is recycled.
constexpr std::size_t read_chunk = block_cache::block_size;

// True once `buf` may hold a whole head: a blank line (CRLF CRLF, or a bare-LF one to reject) lies at
// or after `from`. Parsing only then keeps a peer that trickles bytes from costing a parse per byte.
bool may_hold_head(std::string_view buf, std::size_t from) {
  const std::size_t start = from > 3 ? from - 3 : 0;
  return buf.find("\n\r\n", start) != std::string_view::npos ||
         buf.find("\n\n", start) != std::string_view::npos;
}

http::parse_result parse(const head_target& t, std::string_view bytes) {
  if (t.request) return http::parse_request(bytes, *t.request);
  return http::parse_response(bytes, t.for_request->method, *t.response);
}

}  // namespace

io::duration left_until(clock::time_point deadline) {
  const auto left = std::chrono::ceil<io::duration>(deadline - io::loop_clock::now());
  return left.count() > 0 ? left : io::duration{1};
}

coro::task<io::io_result> read_more(io::stream* s, byte_buffer* buf, io::duration timeout) {
  const std::span<std::byte> space = buf->prepare(read_chunk);
  const io::io_result r = co_await s->read_some(space.first(read_chunk), timeout);
  if (!r.ec) buf->commit(r.bytes);
  co_return r;
}

coro::task<io::io_result> read_idle(io::stream* s, byte_buffer* buf, io::duration timeout) {
  buf->release();
  io::received got = co_await s->read_any(timeout);
  if (got.ec) co_return io::io_result{got.ec, 0};
  const std::span<const std::byte> bytes = got.data.bytes();
  // Into a block of the thread's cache, as read_more reads: storage of the request's own size would
  // cost a malloc per request (and a second one if a body follows).
  buf->prepare(std::max(bytes.size(), read_chunk));
  buf->append({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  co_return io::io_result{{}, bytes.size()};
}

coro::task<head_result> read_head(io::stream* from, byte_buffer* buf, head_target target,
                                  clock::time_point deadline) {
  using status = head_result::status;
  std::size_t scanned = 0;
  // Bounded: each pass reads at least one byte, and a head never exceeds header_limit.
  for (std::size_t reads = 0; reads <= http::header_limit; ++reads) {
    if (!buf->empty() && may_hold_head(buf->view(), scanned)) {
      http::parse_result r = parse(target, buf->view());
      if (r.status == http::parse_status::complete) co_return head_result{status::complete, r.consumed, {}};
      if (r.status == http::parse_status::invalid)
        co_return head_result{status::invalid, 0, std::move(r.error)};
      if (r.status == http::parse_status::too_large) co_return head_result{status::too_large, 0, {}};
    }
    if (buf->size() >= http::header_limit) co_return head_result{status::too_large, 0, {}};
    scanned = buf->size();
    const io::io_result r = co_await read_more(from, buf, left_until(deadline));
    if (io::is_timeout(r.ec)) co_return head_result{status::timeout, 0, {}};
    if (r.ec || r.bytes == 0) co_return head_result{status::closed, 0, {}};
  }
  co_return head_result{status::too_large, 0, {}};
}

}  // namespace cproxy::proxy
