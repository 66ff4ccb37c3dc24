// The composed operations of connect/io/socket.hpp and connect/io/stream.hpp: loops over partial
// writes, shared by every backend, and socket_stream.
#include "connect/io/socket.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "connect/io/stream.hpp"

namespace cproxy::io {

endpoint socket::remote_endpoint() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

coro::task<io_result> socket::send_all(std::span<const std::byte> buf, duration timeout) {
  std::size_t sent = 0;
  while (sent < buf.size()) {
    const io_result r = co_await send(buf.subspan(sent), timeout);
    if (r.ec) co_return io_result{r.ec, sent};
    sent += r.bytes;
  }
  co_return io_result{{}, sent};
}

// A last answer almost always fits the socket buffer: sent here, with the FIN right behind it, the
// client reads both in one wake-up (through the backend the FIN followed a loop turn later, and a
// client reading to EOF woke twice), and the coroutine does not suspend. Bench: docs/performance.md.
coro::task<io_result> socket::send_last(std::span<const std::byte> buf, duration timeout) {
  std::error_code ec;
  std::size_t sent = try_send(buf, ec);
  if (ec) co_return io_result{ec, sent};
  if (sent < buf.size()) {
    const io_result rest = co_await send_all(buf.subspan(sent), timeout);
    sent += rest.bytes;
    if (rest.ec) co_return io_result{rest.ec, sent};
  }
  shutdown_send();
  co_return io_result{{}, sent};
}

std::size_t socket::try_send(std::span<const std::byte> buf, std::error_code& ec) noexcept {
  ec.clear();
  if (!impl_ || buf.empty()) return 0;
  const ssize_t n = ::send(native_handle(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return static_cast<std::size_t>(n);
  if (errno != EAGAIN && errno != EWOULDBLOCK) ec = {errno, std::generic_category()};
  return 0;
}

coro::task<io_result> socket::writev_all(std::span<const const_buffer> bufs, duration timeout) {
  std::vector<const_buffer> rest(bufs.begin(), bufs.end());
  std::size_t first = 0;
  std::size_t total = 0;
  while (first < rest.size()) {
    const std::span<const const_buffer> pending(rest.data() + first, rest.size() - first);
    const io_result r = co_await writev(pending, timeout);
    if (r.ec) co_return io_result{r.ec, total};
    total += r.bytes;
    std::size_t n = r.bytes;
    while (first < rest.size() && n >= rest[first].size) n -= rest[first++].size;
    if (first < rest.size()) {
      rest[first].data = static_cast<const std::byte*>(rest[first].data) + n;
      rest[first].size -= n;
    }
  }
  co_return io_result{{}, total};
}

namespace {

// Frees the heap buffers of stream::read_any's default.
class heap_lease_owner final : public lease_owner {
 public:
  void release_lease(std::uint32_t, std::byte* data) noexcept override { delete[] data; }
};
heap_lease_owner heap_leases;

}  // namespace

coro::task<received> stream::read_any(duration timeout) {
  std::unique_ptr<std::byte[]> buf(new std::byte[read_any_size]);
  const std::span<std::byte> into(buf.get(), read_any_size);
  const io_result r = co_await read_some(into, timeout);
  if (r.ec || r.bytes == 0) co_return received{r.ec, {}};
  co_return received{{}, buffer_lease(&heap_leases, 0, buf.release(), r.bytes)};
}

coro::task<io_result> stream::write_last(std::span<const std::byte> buf, duration timeout) {
  co_return co_await write_all(buf, timeout);
}

std::size_t stream::try_write(std::span<const std::byte>) noexcept {
  return 0;
}

coro::task<io_result> socket_stream::read_some(std::span<std::byte> buf, duration timeout) {
  co_return co_await socket_.recv(buf, timeout);
}
coro::task<received> socket_stream::read_any(duration timeout) {
  co_return co_await socket_.recv_any(timeout);
}
coro::task<io_result> socket_stream::write_all(std::span<const std::byte> buf, duration timeout) {
  co_return co_await socket_.send_all(buf, timeout);
}
coro::task<io_result> socket_stream::write_all(std::span<const const_buffer> bufs, duration timeout) {
  co_return co_await socket_.writev_all(bufs, timeout);
}

coro::task<io_result> socket_stream::write_last(std::span<const std::byte> buf, duration timeout) {
  co_return co_await socket_.send_last(buf, timeout);
}

std::size_t socket_stream::try_write(std::span<const std::byte> buf) noexcept {
  std::error_code ignored;  // the caller is closing: a failure leaves nothing to do
  return socket_.try_send(buf, ignored);
}

}  // namespace cproxy::io
