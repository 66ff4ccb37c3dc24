// Which process listens on a TCP port: the socket's inode from /proc/net/tcp and tcp6 (state LISTEN),
// then the process holding that inode among /proc/*/fd. Only the listener, never a client of the port.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace cproxy::control {

struct port_owner {
  pid_t pid = 0;
  uid_t uid = 0;
};

std::optional<port_owner> find_listener(std::uint16_t port);

}  // namespace cproxy::control
