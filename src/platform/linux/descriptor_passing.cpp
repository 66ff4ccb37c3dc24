// Linux implementation of connect/platform/descriptor_passing.hpp: SCM_RIGHTS.
#include "connect/platform/descriptor_passing.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace cproxy::platform {

ssize_t send_with_descriptor(int unix_socket, const void* data, std::size_t size, int fd) {
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  return ::sendmsg(unix_socket, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t receive_with_descriptor(int unix_socket, void* data, std::size_t size, int* received) {
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  // MSG_CMSG_CLOEXEC: no window in which a fork of another thread inherits the descriptor.
  const ssize_t n = ::recvmsg(unix_socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got = -1;
      std::memcpy(&got, CMSG_DATA(c), sizeof(int));
      if (received && *received < 0) {
        *received = got;
      } else {
        ::close(got);
      }
    }
  }
  return n;
}

}  // namespace cproxy::platform
