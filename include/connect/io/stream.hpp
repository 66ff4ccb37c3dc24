// stream: the byte stream connection code reads and writes. A plain socket is one (socket_stream); a
// TLS layer (tls::tls_stream, OpenSSL over memory BIOs) is another that runs over any stream, so
// connection code does not change, and tests put either over an in-memory stream.
#pragma once

#include <cstddef>
#include <span>

#include "connect/coro/task.hpp"
#include "connect/io/result.hpp"
#include "connect/io/socket.hpp"

namespace cproxy::io {

class stream {
 public:
  virtual ~stream() = default;
  // Bytes into `buf`; 0 bytes means EOF.
  virtual coro::task<io_result> read_some(std::span<std::byte> buf, duration timeout) = 0;
  // Bytes into a buffer the stream picks once they arrive; an empty lease without error means EOF. A
  // socket_stream leases the backend's buffers (io_uring's provided buffers: a connection waiting for
  // bytes holds no buffer of its own); the default reads up to read_any_size bytes into a heap lease.
  virtual coro::task<received> read_any(duration timeout);
  virtual coro::task<io_result> write_all(std::span<const std::byte> buf, duration timeout) = 0;
  virtual coro::task<io_result> write_all(std::span<const const_buffer> bufs, duration timeout) = 0;
  // The connection's last bytes. A socket ends its sending right after them (socket::send_last): a
  // client reading to EOF gets the bytes and the EOF in one wake-up, not one each. The default writes
  // them as write_all does; the close that follows ends the connection.
  virtual coro::task<io_result> write_last(std::span<const std::byte> buf, duration timeout);
  // Writes what the stream takes at once without waiting, and returns how much: for the few bytes a
  // stream sends as it closes (a TLS close_notify), where no coroutine may wait. Never call it while a
  // write_all is in flight. The default takes nothing.
  virtual std::size_t try_write(std::span<const std::byte> buf) noexcept;
  virtual void cancel() noexcept = 0;
  virtual void shutdown_send() noexcept = 0;
  // The plain socket underneath when bytes may pass unchanged (splice), else nullptr (TLS).
  virtual socket* plain_socket() noexcept = 0;

  static constexpr std::size_t read_any_size = 16 * 1024;  // a TLS record's plaintext
};

class socket_stream final : public stream {
 public:
  explicit socket_stream(socket s) noexcept : socket_(std::move(s)) {}
  coro::task<io_result> read_some(std::span<std::byte> buf, duration timeout) override;
  coro::task<received> read_any(duration timeout) override;
  coro::task<io_result> write_all(std::span<const std::byte> buf, duration timeout) override;
  coro::task<io_result> write_all(std::span<const const_buffer> bufs, duration timeout) override;
  coro::task<io_result> write_last(std::span<const std::byte> buf, duration timeout) override;
  std::size_t try_write(std::span<const std::byte> buf) noexcept override;
  void cancel() noexcept override { socket_.cancel(); }
  void shutdown_send() noexcept override { socket_.shutdown_send(); }
  socket* plain_socket() noexcept override { return &socket_; }

 private:
  socket socket_;
};

}  // namespace cproxy::io
