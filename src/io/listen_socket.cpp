// Implementation of connect/io/listen_socket.hpp (POSIX).
#include "connect/io/listen_socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <utility>

namespace cproxy::io {

listen_socket::listen_socket(listen_socket&& o) noexcept : fd_(std::exchange(o.fd_, invalid)) {}
listen_socket& listen_socket::operator=(listen_socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, invalid);
  }
  return *this;
}
listen_socket::~listen_socket() {
  close();
}

void listen_socket::close() noexcept {
  if (fd_ != invalid) ::close(fd_);
  fd_ = invalid;
}

listen_socket listen_socket::bind(const endpoint& where, int backlog, std::error_code& ec) {
  ec.clear();
  const int fd = ::socket(where.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = {errno, std::generic_category()};
    return {};
  }
  listen_socket s(fd);
  // SO_REUSEADDR lets a restarted proxy bind past TIME_WAIT; it does not let two listeners share a
  // port (that would take SO_REUSEPORT, which we never set).
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (where.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, where.data(), where.size()) != 0 || ::listen(fd, backlog) != 0) {
    ec = {errno, std::generic_category()};
    return {};
  }
  return s;
}

endpoint listen_socket::local_endpoint() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  return endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

native_handle_type listen_socket::duplicate(std::error_code& ec) const {
  const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ec = {errno, std::generic_category()};
  return fd;
}

}  // namespace cproxy::io
