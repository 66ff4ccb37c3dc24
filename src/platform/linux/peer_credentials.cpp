// Linux implementation of connect/platform/peer_credentials.hpp: SO_PEERCRED.
#include "connect/platform/peer_credentials.hpp"

#include <sys/socket.h>

namespace cproxy::platform {

std::optional<peer_credentials> unix_peer(int unix_socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(unix_socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return std::nullopt;
  return peer_credentials{cred.pid, cred.uid};
}

}  // namespace cproxy::platform
