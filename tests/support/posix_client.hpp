// A blocking POSIX TCP client on loopback, for the far side of tests whose server runs in other threads
// (worker_pool). Every call is bounded by SO_RCVTIMEO/SO_SNDTIMEO; no io context involved.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <utility>

namespace cproxy::test {

class blocking_client {
 public:
  blocking_client() = default;
  blocking_client(blocking_client&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  blocking_client& operator=(blocking_client&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~blocking_client() { close(); }

  static blocking_client connect(std::uint16_t port, std::chrono::milliseconds timeout, std::error_code& ec) {
    blocking_client c;
    c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd_ < 0) {
      ec = last_error();
      return {};
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(c.fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c.fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds connect()
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      ec = last_error();
      return {};
    }
    ec.clear();
    return c;
  }

  bool is_open() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }

  std::error_code send_all(std::span<const std::byte> bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      sent += static_cast<std::size_t>(n);
    }
    return {};
  }

  // Reads exactly out.size() bytes. eof is set when the peer closed first.
  std::error_code recv_exact(std::span<std::byte> out, bool& eof) {
    eof = false;
    std::size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::recv(fd_, out.data() + got, out.size() - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (n == 0) {
        eof = true;
        return {};
      }
      got += static_cast<std::size_t>(n);
    }
    return {};
  }

  // One recv(): bytes read (0 = EOF), or an error (EAGAIN when SO_RCVTIMEO expired).
  std::error_code recv_some(std::span<std::byte> out, std::size_t& n) {
    for (;;) {
      const ssize_t r = ::recv(fd_, out.data(), out.size(), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        n = 0;
        return last_error();
      }
      n = static_cast<std::size_t>(r);
      return {};
    }
  }

  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  static std::error_code last_error() { return {errno, std::generic_category()}; }
  int fd_ = -1;
};

}  // namespace cproxy::test
