// Socket options every TCP socket of the io core gets.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace cproxy::io::detail {

// Nagle off: a proxy forwards what it has at once; holding a small write back until the previous one
// is acknowledged adds a round trip to every request/response exchange.
inline void disable_nagle(int fd) noexcept {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace cproxy::io::detail
