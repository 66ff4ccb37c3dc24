// Reading a child process's captured stdout and stderr: the step the tests' run_program() loops repeat
// until both pipes are closed or their deadline passes.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <string>

namespace cproxy::test {

// Waits up to `wait` for output on the child's pipes (fds[0] its stdout, fds[1] its stderr; -1 once
// closed) and appends what is ready to `out` and `err`. A pipe at EOF, or failing other than by EINTR,
// is closed and its slot set to -1.
inline void read_child_pipes(int (&fds)[2], std::chrono::milliseconds wait, std::string& out,
                             std::string& err) {
  pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
  if (::poll(p, 2, static_cast<int>(wait.count())) <= 0) return;
  for (int i = 0; i < 2; ++i) {
    if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buf[65536];
    const ssize_t n = ::read(fds[i], buf, sizeof buf);
    if (n > 0) {
      (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      ::close(fds[i]);
      fds[i] = -1;
    }
  }
}

}  // namespace cproxy::test
