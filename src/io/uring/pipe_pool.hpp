// pipe_pool: pipes for socket -> pipe -> socket splices, kept per worker and reused (creating a pipe
// costs two descriptors and a syscall). A pipe that may still hold bytes is closed, never reused.
#pragma once

#include <optional>
#include <vector>

namespace cproxy::io::uring {

struct pipe_pair {
  int read_end = -1;
  int write_end = -1;
};

class pipe_pool {
 public:
  pipe_pool() = default;
  pipe_pool(const pipe_pool&) = delete;
  pipe_pool& operator=(const pipe_pool&) = delete;
  ~pipe_pool();

  std::optional<pipe_pair> take();
  void give_back(pipe_pair p);  // only an empty pipe
  static void close(pipe_pair p);

 private:
  static constexpr std::size_t max_pooled = 64;
  std::vector<pipe_pair> free_;
};

}  // namespace cproxy::io::uring
