// Implementation of relay.hpp.
#include "relay.hpp"

#include <algorithm>
#include <memory>

#include "connect/coro/scope.hpp"
#include "connect/http/chunked.hpp"

namespace cproxy::proxy {
namespace {

constexpr std::size_t copy_buffer_size = 64 * 1024;
// Below this, splicing costs more (two SQEs and a pipe) than copying saves.
constexpr std::uint64_t splice_threshold = 256 * 1024;

// Sends the first `n` bytes of `pending` and removes them from it.
coro::task<std::error_code> flush_pending(byte_buffer* pending, std::size_t n, io::stream* to,
                                          io::duration idle) {
  if (n == 0) co_return std::error_code{};
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(pending->view().data()), n);
  const io::io_result w = co_await to->write_all(bytes, idle);
  pending->consume(n);
  co_return w.ec;
}

// A relay's copy buffer; not zeroed (the reads fill it).
std::unique_ptr<std::byte[]> copy_buffer(std::size_t n) {
  return std::unique_ptr<std::byte[]>(new std::byte[n]);
}

}  // namespace

coro::task<relay_outcome> relay_length(io::stream* from, byte_buffer* pending, io::stream* to,
                                       std::uint64_t length, io::duration idle, bool may_splice) {
  relay_outcome out;
  const std::size_t first = static_cast<std::size_t>(std::min<std::uint64_t>(length, pending->size()));
  out.write_error = co_await flush_pending(pending, first, to, idle);
  if (out.write_error) co_return out;
  out.bytes = first;
  std::uint64_t left = length - first;

  io::socket* in = from->plain_socket();
  io::socket* outs = to->plain_socket();
  if (may_splice && in && outs && left >= splice_threshold) {
    while (left > 0) {
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 20));
      const io::io_result r = co_await in->splice_to(*outs, chunk, idle);
      if (r.ec) {
        out.read_error = r.ec;  // splice does not say which side failed; either ends the message
        co_return out;
      }
      if (r.bytes == 0) {
        out.read_error = std::make_error_code(std::errc::connection_aborted);
        co_return out;
      }
      left -= r.bytes;
      out.bytes += r.bytes;
    }
    co_return out;
  }

  const std::size_t buf_size = static_cast<std::size_t>(std::min<std::uint64_t>(left, copy_buffer_size));
  const std::unique_ptr<std::byte[]> buf = copy_buffer(buf_size);
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf_size));
    const io::io_result r = co_await from->read_some(std::span(buf.get(), want), idle);
    if (r.ec || r.bytes == 0) {
      out.read_error = r.ec ? r.ec : std::make_error_code(std::errc::connection_aborted);
      co_return out;
    }
    const io::io_result w = co_await to->write_all(std::span<const std::byte>(buf.get(), r.bytes), idle);
    if (w.ec) {
      out.write_error = w.ec;
      co_return out;
    }
    left -= r.bytes;
    out.bytes += r.bytes;
  }
  co_return out;
}

coro::task<relay_outcome> relay_chunked(io::stream* from, byte_buffer* pending, io::stream* to,
                                        io::duration idle, bool unchunk, std::uint64_t limit) {
  relay_outcome out;
  http::chunked_scanner scanner;
  std::string payload;
  for (int reads = 0;; ++reads) {
    if (!pending->empty()) {
      std::size_t used = 0;
      payload.clear();
      const auto status = scanner.feed(pending->view(), used, unchunk ? &payload : nullptr);
      if (status == http::chunked_scanner::status::invalid) {
        out.read_error = std::make_error_code(std::errc::bad_message);
        co_return out;
      }
      if (limit > 0 && scanner.payload_bytes() > limit) {
        // Past the limit: stop before these bytes go on.
        out.read_error = std::make_error_code(std::errc::file_too_large);
        co_return out;
      }
      if (unchunk) {
        pending->consume(used);
        if (!payload.empty()) {
          const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(payload.data()),
                                                 payload.size());
          out.write_error = (co_await to->write_all(bytes, idle)).ec;
        }
      } else {
        out.write_error = co_await flush_pending(pending, used, to, idle);
      }
      if (out.write_error) co_return out;
      out.bytes += used;
      if (status == http::chunked_scanner::status::done) co_return out;
    }
    const std::span<std::byte> space = pending->prepare(copy_buffer_size);
    const io::io_result r = co_await from->read_some(space, idle);
    if (!r.ec) pending->commit(r.bytes);
    if (r.ec || r.bytes == 0) {
      out.read_error = r.ec ? r.ec : std::make_error_code(std::errc::connection_aborted);
      co_return out;
    }
  }
}

coro::task<relay_outcome> relay_until_eof(io::stream* from, byte_buffer* pending, io::stream* to,
                                          io::duration idle, const bool* stop) {
  relay_outcome out;
  const std::size_t first = pending->size();
  out.write_error = co_await flush_pending(pending, first, to, idle);
  if (out.write_error) co_return out;
  out.bytes = first;
  const std::unique_ptr<std::byte[]> buf = copy_buffer(copy_buffer_size);
  for (;;) {
    if (stop != nullptr && *stop) co_return out;
    const io::io_result r = co_await from->read_some(std::span(buf.get(), copy_buffer_size), idle);
    if (r.ec) {
      out.read_error = r.ec;
      co_return out;
    }
    if (r.bytes == 0) co_return out;  // the end of this message
    const io::io_result w = co_await to->write_all(std::span<const std::byte>(buf.get(), r.bytes), idle);
    if (w.ec) {
      out.write_error = w.ec;
      co_return out;
    }
    out.bytes += r.bytes;
  }
}

namespace {

struct tunnel_state {
  io::stream* ends[2];
  bool failed = false;
  std::uint64_t moved[2] = {0, 0};  // by the index of the end the bytes came from
};

coro::task<void> one_way(tunnel_state* st, int from_index, byte_buffer* pending, io::duration idle,
                         bool may_splice) {
  io::stream* from = st->ends[from_index];
  io::stream* to = st->ends[1 - from_index];
  relay_outcome r;
  io::socket* in = from->plain_socket();
  io::socket* out = to->plain_socket();
  if (may_splice && in && out) {
    const std::size_t first = pending->size();
    r.write_error = co_await flush_pending(pending, first, to, idle);
    if (r.ok()) r.bytes = first;
    while (r.ok() && !st->failed) {
      const io::io_result moved = co_await in->splice_to(*out, 1 << 20, idle);
      if (moved.ec) r.read_error = moved.ec;
      if (moved.ec || moved.bytes == 0) break;
      r.bytes += moved.bytes;
    }
  } else {
    // Once the other direction failed and cancelled both ends, a read this one starts afterwards (its
    // last read had completed before the cancel) must not begin: it would hold both connections for
    // `idle` (found by the in-process fault sweep, tests/unit/proxy).
    r = co_await relay_until_eof(from, pending, to, idle, &st->failed);
  }
  st->moved[from_index] = r.bytes;
  if (r.ok() && !st->failed) {
    to->shutdown_send();  // pass the half-close on: the other direction may still be talking
  } else if (!st->failed) {
    st->failed = true;  // an error or an idle timeout ends the whole tunnel
    st->ends[0]->cancel();
    st->ends[1]->cancel();
  }
}

}  // namespace

coro::task<tunnel_bytes> tunnel(io::stream* client, byte_buffer* client_pending, io::stream* upstream,
                                byte_buffer* upstream_pending, io::duration idle, bool may_splice) {
  tunnel_state st{{client, upstream}};
  coro::scope directions;
  directions.spawn(one_way(&st, 0, client_pending, idle, may_splice));
  directions.spawn(one_way(&st, 1, upstream_pending, idle, may_splice));
  co_await directions.join();
  co_return tunnel_bytes{st.moved[0], st.moved[1]};
}

}  // namespace cproxy::proxy
