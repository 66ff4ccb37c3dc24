// endpoint: an IPv4 or IPv6 address and port, stored as a sockaddr. Numeric only: name resolution
// belongs to callers (routes name 127.0.0.1 and ::1 explicitly).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>
#endif

namespace cproxy::io {

class endpoint {
 public:
  endpoint() noexcept;
  // "127.0.0.1:8080", "[::1]:8080". nullopt when not a numeric address with a port.
  static std::optional<endpoint> parse(std::string_view host_port);
  // A numeric host ("127.0.0.1", "::1") and a port.
  static std::optional<endpoint> from(std::string_view host, std::uint16_t port);
  static endpoint loopback_v4(std::uint16_t port);
  static endpoint loopback_v6(std::uint16_t port);
  static endpoint from_sockaddr(const sockaddr* sa, socklen_t len);

  int family() const noexcept { return storage_.ss_family; }
  std::uint16_t port() const noexcept;
  std::string address() const;    // "127.0.0.1", "::1"
  std::string to_string() const;  // "127.0.0.1:8080", "[::1]:8080"

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

}  // namespace cproxy::io
