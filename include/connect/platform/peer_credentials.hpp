// Who is at the other end of a connected Unix socket, as the kernel recorded it when the peer bound or
// connected (not what the peer says). Linux: SO_PEERCRED.
#pragma once

#include <sys/types.h>

#include <optional>

namespace cproxy::platform {

struct peer_credentials {
  pid_t pid = 0;
  uid_t uid = 0;
};

// The peer of `unix_socket`; nullopt (errno set) when the kernel cannot say.
std::optional<peer_credentials> unix_peer(int unix_socket);

}  // namespace cproxy::platform
