// Processes named by pid: whether one lives, its command name, and a handle that names the process
// itself (never a later one given its pid) to signal it and see it exit. Linux: pidfds, /proc.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace cproxy::platform {

// kill(pid, 0) succeeds or fails with EPERM: a live process, possibly another user's.
bool pid_alive(pid_t pid);

// The command name of `pid` ("connect"); nullopt where the platform cannot tell (the caller decides
// whether a live pid it cannot name is trusted).
std::optional<std::string> process_name(pid_t pid);

class process_handle {
 public:
  // A handle on the process `pid` names now. Not valid() where the platform has none for it (no such
  // process, a kernel without pidfds, a seccomp profile that refuses them): the caller falls back to pids.
  static process_handle open(pid_t pid);

  process_handle() = default;
  process_handle(process_handle&& o) noexcept;
  process_handle& operator=(process_handle&& o) noexcept;
  ~process_handle();
  process_handle(const process_handle&) = delete;
  process_handle& operator=(const process_handle&) = delete;

  bool valid() const noexcept { return fd_ >= 0; }
  // A descriptor that turns readable (poll POLLIN) once the process exited; -1 when not valid().
  int fd() const noexcept { return fd_; }
  // Sends `sig` to this process only; false when it could not be sent.
  bool signal(int sig) const;
  // True once the process exited (a zombie not yet reaped counts as exited).
  bool exited() const;

 private:
  explicit process_handle(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cproxy::platform
