// Linux implementation of connect/platform/process.hpp: pidfds (Linux 5.3) and /proc/PID/comm.
#include "connect/platform/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <utility>

namespace cproxy::platform {

bool pid_alive(pid_t pid) {
  // pid 0 and negatives would signal process groups: never "alive" as a single process.
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

std::optional<std::string> process_name(pid_t pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!std::getline(comm, name)) return std::nullopt;
  return name;
}

process_handle process_handle::open(pid_t pid) {
#if defined(SYS_pidfd_open)
  // ENOSYS on kernels before 5.3, EPERM under some seccomp profiles: no handle, the caller uses the pid.
  return process_handle(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#else
  (void)pid;
  return process_handle();
#endif
}

process_handle::process_handle(process_handle&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

process_handle& process_handle::operator=(process_handle&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

process_handle::~process_handle() {
  if (fd_ >= 0) ::close(fd_);
}

bool process_handle::signal(int sig) const {
#if defined(SYS_pidfd_send_signal)
  return fd_ >= 0 && ::syscall(SYS_pidfd_send_signal, fd_, sig, nullptr, 0) == 0;
#else
  (void)sig;
  return false;
#endif
}

bool process_handle::exited() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN, 0};  // a pidfd is readable once its process exited
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace cproxy::platform
