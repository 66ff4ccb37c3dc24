// Implementation of connect/daemon/port_owner.hpp: the kernel's bind conflict rules over the listeners
// the platform lists (connect/platform/tcp_listeners.hpp).
#include "connect/daemon/port_owner.hpp"

#include <netinet/in.h>

#include <cstring>

#include "connect/platform/tcp_listeners.hpp"

namespace cproxy::control {
namespace {

using platform::ip_address;

ip_address from_endpoint(const io::endpoint& e) {
  if (e.family() == AF_INET6)
    return ip_address::from_v6(reinterpret_cast<const sockaddr_in6*>(e.data())->sin6_addr.s6_addr);
  ip_address a;
  std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(e.data())->sin_addr, 4);
  return a;
}

// How surely a listener at `held` stops a bind of `want` (same port). The proxy's IPv6 sockets set
// IPV6_V6ONLY, so an IPv6 `want` never meets an IPv4 listener. An IPv4 `want` meets a [::] listener
// only when that one is dual-stack (IPV6_V6ONLY=0, Node's default), which the platform may not show:
// such a listener is only a `possible` holder, named when no `certain` one exists.
enum class conflict { none, possible, certain };

conflict conflicts(const ip_address& want, const ip_address& held) {
  if (want.v4 == held.v4) {
    if (want == held || want.unspecified() || held.unspecified()) return conflict::certain;
    return conflict::none;
  }
  if (want.v4 && !held.v4 && held.unspecified()) return conflict::possible;
  return conflict::none;
}

}  // namespace

std::optional<port_owner> find_listener(const io::endpoint& want) {
  const ip_address wanted = from_endpoint(want);
  const std::vector<platform::tcp_listener> listeners = platform::tcp_listeners(
      want.port(), [&wanted](const ip_address& held) { return conflicts(wanted, held) != conflict::none; });
  // A `certain` holder before a `possible` one, each the first the platform lists.
  std::optional<port_owner> possible;
  for (const platform::tcp_listener& l : listeners) {
    const port_owner owner{l.pid, l.uid};
    if (conflicts(wanted, l.address) == conflict::certain) return owner;
    if (!possible) possible = owner;
  }
  return possible;
}

io::endpoint local_endpoint(const std::string& bind, std::uint16_t port) {
  if (bind == "::" || bind == "[::]") return io::endpoint::loopback_v6(port);
  if (bind.empty() || bind == "0.0.0.0") return io::endpoint::loopback_v4(port);
  const auto ep = io::endpoint::from(bind, port);
  return ep ? *ep : io::endpoint::loopback_v4(port);
}

}  // namespace cproxy::control
