// listen_socket: the one listening socket of a proxy, bound without SO_REUSEPORT so that a port already
// taken is reported (EADDRINUSE) instead of silently shared. Workers accept from dup()s of it, and
// --replace can hand it to a successor process.
#pragma once

#include <system_error>

#include "connect/io/backend.hpp"
#include "connect/io/endpoint.hpp"

namespace cproxy::io {

class listen_socket {
 public:
  listen_socket() noexcept = default;
  // Adopts an already listening descriptor (inherited or received from a predecessor).
  explicit listen_socket(native_handle_type fd) noexcept : fd_(fd) {}
  listen_socket(listen_socket&& o) noexcept;
  listen_socket& operator=(listen_socket&& o) noexcept;
  listen_socket(const listen_socket&) = delete;
  listen_socket& operator=(const listen_socket&) = delete;
  ~listen_socket();

  static listen_socket bind(const endpoint& where, int backlog, std::error_code& ec);

  bool is_open() const noexcept { return fd_ != invalid; }
  native_handle_type native_handle() const noexcept { return fd_; }
  endpoint local_endpoint() const;
  // A new descriptor for the same socket, for one worker's acceptor.
  native_handle_type duplicate(std::error_code& ec) const;
  void close() noexcept;

 private:
  static constexpr native_handle_type invalid = static_cast<native_handle_type>(-1);
  native_handle_type fd_ = invalid;
};

}  // namespace cproxy::io
