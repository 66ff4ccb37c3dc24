// child_process: runs the real `connect` binary for end-to-end tests, with its stdout and stderr
// captured, waits with deadlines, and stops it by its pid. Optionally confines the child with a seccomp
// filter that makes io_uring_setup fail, as Docker's default profile does.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace cproxy::test {

struct spawn_options {
  std::vector<std::string> args;       // without argv[0]
  std::vector<std::string> extra_env;  // "NAME=value", added to a copy of the environment
  bool refuse_io_uring = false;        // seccomp: io_uring_setup fails with EPERM
};

class child_process {
 public:
  explicit child_process(const spawn_options& options);
  ~child_process();  // SIGKILLs the child if it still runs
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Reads output until `needle` appears on stdout or the deadline passes; true if it appeared.
  bool wait_for_stdout(const std::string& needle, std::chrono::milliseconds deadline);
  // Exit code (or 128 + signal), or nullopt if it is still running at the deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds deadline);
  void signal(int sig);
  const std::string& out();
  const std::string& err();

 private:
  void pump(std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> status_;
};

// The port in a "[ok] HTTP proxy running on port N" line, or 0.
unsigned running_port(const std::string& stdout_text);

// One blocking HTTP/1.1 request to 127.0.0.1:port with a deadline; returns the whole response text
// (the server closes: the request says Connection: close), or empty on failure.
std::string http_request(unsigned port, const std::string& request, std::chrono::milliseconds deadline);

}  // namespace cproxy::test
