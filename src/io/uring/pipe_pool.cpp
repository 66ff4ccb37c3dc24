// Implementation of pipe_pool.hpp.
#include "pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace cproxy::io::uring {

pipe_pool::~pipe_pool() {
  for (const pipe_pair& p : free_) close(p);
}

std::optional<pipe_pair> pipe_pool::take() {
  if (!free_.empty()) {
    const pipe_pair p = free_.back();
    free_.pop_back();
    return p;
  }
  int fds[2];
  // Non-blocking, as the sockets: the loop's splice never waits on either end.
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return std::nullopt;
  // A larger pipe moves more per splice. 256 KiB keeps a non-root user within fs.pipe-user-pages-soft
  // (64 MiB) for 128 splicing connections; past it the kernel refuses, and the pipe keeps 64 KiB.
  ::fcntl(fds[1], F_SETPIPE_SZ, 256 << 10);
  return pipe_pair{fds[0], fds[1]};
}

void pipe_pool::give_back(pipe_pair p) {
  if (free_.size() < max_pooled) {
    free_.push_back(p);
  } else {
    close(p);
  }
}

void pipe_pool::close(pipe_pair p) {
  ::close(p.read_end);
  ::close(p.write_end);
}

}  // namespace cproxy::io::uring
