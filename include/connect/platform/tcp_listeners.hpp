// Which processes hold TCP sockets listening on a port (who stops the proxy's bind). Only listeners,
// never clients of the port. Linux: /proc/net/tcp and tcp6 (state LISTEN), then /proc/*/fd.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

namespace cproxy::platform {

// An address as bind() conflicts see it: an IPv4-mapped IPv6 address ([::ffff:127.0.0.1]) is the IPv4
// address it maps.
struct ip_address {
  bool v4 = true;
  std::array<unsigned char, 16> bytes{};  // IPv4: the first 4

  bool unspecified() const {
    const std::size_t n = v4 ? 4 : 16;
    for (std::size_t i = 0; i < n; ++i)
      if (bytes[i] != 0) return false;
    return true;
  }
  bool operator==(const ip_address&) const = default;

  // From the 16 bytes of an IPv6 address, in network order.
  static ip_address from_v6(const unsigned char* b) {
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    ip_address a;
    if (std::memcmp(b, mapped, 12) == 0) {
      std::memcpy(a.bytes.data(), b + 12, 4);
    } else {
      a.v4 = false;
      std::memcpy(a.bytes.data(), b, 16);
    }
    return a;
  }
};

struct tcp_listener {
  ip_address address;
  pid_t pid = 0;  // a process that holds the socket
  uid_t uid = 0;  // that process's owner
};

// The sockets listening on `port` whose address `wanted` accepts, once per descriptor that holds one, in the
// order the platform lists processes. Empty when there are none or the platform cannot tell.
std::vector<tcp_listener> tcp_listeners(std::uint16_t port,
                                        const std::function<bool(const ip_address&)>& wanted);

}  // namespace cproxy::platform
