// Implementation of connect/io/endpoint.hpp (POSIX).
#include "connect/io/endpoint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace cproxy::io {

endpoint::endpoint() noexcept : storage_{}, len_(0) {}

std::optional<endpoint> endpoint::from(std::string_view host, std::uint16_t port) {
  endpoint e;
  const std::string h(host);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&e.storage_, &v4, sizeof v4);
    e.len_ = sizeof v4;
    return e;
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    std::memcpy(&e.storage_, &v6, sizeof v6);
    e.len_ = sizeof v6;
    return e;
  }
  return std::nullopt;
}

std::optional<endpoint> endpoint::parse(std::string_view host_port) {
  std::string_view host;
  std::string_view port;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos || close + 1 >= host_port.size() || host_port[close + 1] != ':')
      return std::nullopt;
    host = host_port.substr(1, close - 1);
    port = host_port.substr(close + 2);
  } else {
    const auto colon = host_port.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (err != std::errc{} || end != port.data() + port.size() || value > 65535 || port.empty())
    return std::nullopt;
  return from(host, static_cast<std::uint16_t>(value));
}

endpoint endpoint::loopback_v4(std::uint16_t port) {
  return *from("127.0.0.1", port);
}
endpoint endpoint::loopback_v6(std::uint16_t port) {
  return *from("::1", port);
}

endpoint endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) {
  endpoint e;
  if (len > static_cast<socklen_t>(sizeof e.storage_)) len = sizeof e.storage_;
  std::memcpy(&e.storage_, sa, len);
  e.len_ = len;
  return e;
}

std::uint16_t endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string endpoint::address() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  else if (family() == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
  return buf;
}

std::string endpoint::to_string() const {
  if (family() == AF_INET6) return "[" + address() + "]:" + std::to_string(port());
  return address() + ":" + std::to_string(port());
}

}  // namespace cproxy::io
