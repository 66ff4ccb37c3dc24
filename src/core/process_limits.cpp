// Implementation of connect/core/process_limits.hpp for POSIX systems.
#include "connect/core/process_limits.hpp"

#include <signal.h>
#include <sys/resource.h>

namespace cproxy {

std::uint64_t raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur;
}

void ignore_sigpipe() {
  ::signal(SIGPIPE, SIG_IGN);
}

}  // namespace cproxy
