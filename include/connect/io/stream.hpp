// stream: the byte stream connection code reads and writes. A plain socket is one; a TLS layer (OpenSSL
// over memory BIOs) will be another that wraps a socket_stream, so connection code does not change.
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
  virtual coro::task<io_result> write_all(std::span<const std::byte> buf, duration timeout) = 0;
  virtual coro::task<io_result> write_all(std::span<const const_buffer> bufs, duration timeout) = 0;
  virtual void cancel() noexcept = 0;
  virtual void shutdown_send() noexcept = 0;
  // The plain socket underneath when bytes may pass unchanged (splice), else nullptr (TLS).
  virtual socket* plain_socket() noexcept = 0;
};

class socket_stream final : public stream {
 public:
  explicit socket_stream(socket s) noexcept : socket_(std::move(s)) {}
  coro::task<io_result> read_some(std::span<std::byte> buf, duration timeout) override;
  coro::task<io_result> write_all(std::span<const std::byte> buf, duration timeout) override;
  coro::task<io_result> write_all(std::span<const const_buffer> bufs, duration timeout) override;
  void cancel() noexcept override { socket_.cancel(); }
  void shutdown_send() noexcept override { socket_.shutdown_send(); }
  socket* plain_socket() noexcept override { return &socket_; }

 private:
  socket socket_;
};

}  // namespace cproxy::io
