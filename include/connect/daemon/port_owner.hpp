// Which process listens where the proxy wants to bind, by the kernel's bind conflict rules over the
// listeners the platform lists (connect/platform/tcp_listeners.hpp; /proc on Linux). Only the
// listener, never a client of the port.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "connect/io/endpoint.hpp"

namespace cproxy::control {

struct port_owner {
  pid_t pid = 0;
  uid_t uid = 0;
};

// The listener that stops a bind of `want` (the proxy's bind address and port), by the kernel's rules
// for the proxy's sockets (SO_REUSEADDR; IPV6_V6ONLY on IPv6): one on the same address, or on the
// wildcard of its family, or `want` is that wildcard; an IPv4-mapped IPv6 address counts as IPv4. A
// [::1]:P listener never holds 127.0.0.1:P. A [::]:P listener holds an IPv4 address only when it is
// dual-stack, which /proc does not show: it is named only when no IPv4 listener can be the holder.
std::optional<port_owner> find_listener(const io::endpoint& want);

// Where a client on this machine reaches a proxy bound to `bind`:`port`: wildcard binds on loopback
// (0.0.0.0 -> 127.0.0.1, :: -> ::1), a numeric address as it is.
io::endpoint local_endpoint(const std::string& bind, std::uint16_t port);

}  // namespace cproxy::control
