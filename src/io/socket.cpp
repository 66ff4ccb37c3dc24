// The composed operations of connect/io/socket.hpp and connect/io/stream.hpp: loops over partial
// writes, shared by every backend.
#include <sys/socket.h>

#include <vector>

#include "connect/io/socket.hpp"
#include "connect/io/stream.hpp"

namespace cproxy::io {

endpoint socket::remote_endpoint() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

bool socket::is_quiet() const {
  char probe;
  const ssize_t n = ::recv(native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
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

coro::task<io_result> socket_stream::read_some(std::span<std::byte> buf, duration timeout) {
  co_return co_await socket_.recv(buf, timeout);
}
coro::task<io_result> socket_stream::write_all(std::span<const std::byte> buf, duration timeout) {
  co_return co_await socket_.send_all(buf, timeout);
}
coro::task<io_result> socket_stream::write_all(std::span<const const_buffer> bufs, duration timeout) {
  co_return co_await socket_.writev_all(bufs, timeout);
}

}  // namespace cproxy::io
