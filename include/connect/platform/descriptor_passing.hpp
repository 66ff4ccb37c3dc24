// Bytes with an open descriptor over a Unix socket (the listening socket a --replace successor takes
// over). Both calls are non-blocking; results and errno are sendmsg()'s and recvmsg()'s. Linux:
// SCM_RIGHTS with MSG_CMSG_CLOEXEC and MSG_NOSIGNAL.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace cproxy::platform {

// Sends `size` bytes from `data` with `fd` attached (fd < 0: bytes only). Never raises SIGPIPE.
ssize_t send_with_descriptor(int unix_socket, const void* data, std::size_t size, int fd);

// Receives up to `size` bytes into `data`. A descriptor that came with them is stored, close-on-exec,
// in *received when `received` is given and still holds -1; any other is closed at once.
ssize_t receive_with_descriptor(int unix_socket, void* data, std::size_t size, int* received);

}  // namespace cproxy::platform
