// Implementation of copy_relay.hpp.
#include "copy_relay.hpp"

#include <vector>

#include "connect/io/awaitable.hpp"

namespace cproxy::io::detail {
namespace {

coro::task<io_result> send_everything(socket_impl* to, std::span<const std::byte> bytes, duration idle) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    send_op op;
    op.buffer = bytes.subspan(sent);
    op.timeout = idle;
    auto aw = op_awaitable<socket_impl, send_op>{to, std::move(op)};
    const io_result r = co_await aw;
    if (r.ec) co_return io_result{r.ec, sent};
    sent += r.bytes;
  }
  co_return io_result{{}, sent};
}

}  // namespace

coro::task<io_result> copy_some(socket_impl* from, socket_impl* to, std::size_t max, duration idle) {
  if (max >= max_lease_size) {
    struct lease_awaitable : op_awaitable<socket_impl, recv_any_op> {
      recv_any_op& await_resume() noexcept { return op; }
    };
    lease_awaitable aw{{from, {}}};
    aw.op.timeout = idle;
    recv_any_op& got = co_await aw;
    if (got.res < 0) co_return io_result{got.error(), 0};
    if (got.lease.empty()) co_return io_result{{}, 0};
    // Backends lease buffers of at most max_lease_size bytes, so the lease fits within `max`.
    co_return co_await send_everything(to, got.lease.bytes(), idle);
  }
  std::vector<std::byte> buf(max);
  recv_op op;
  op.buffer = buf;
  op.timeout = idle;
  auto aw = op_awaitable<socket_impl, recv_op>{from, std::move(op)};
  const io_result r = co_await aw;
  if (r.ec || r.bytes == 0) co_return r;
  co_return co_await send_everything(to, std::span<const std::byte>(buf.data(), r.bytes), idle);
}

}  // namespace cproxy::io::detail
