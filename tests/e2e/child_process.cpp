// Implementation of child_process.hpp.
#include "child_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <stdexcept>

extern char** environ;

namespace cproxy::test {
namespace {

using clock = std::chrono::steady_clock;

[[noreturn]] void child_fail(const char* what) {
  const ssize_t ignored = ::write(2, what, std::strlen(what));
  (void)ignored;
  ::_exit(127);
}

void refuse_io_uring_in_child() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) child_fail("seccomp_init failed\n");
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0) != 0)
    child_fail("seccomp_rule_add failed\n");
  if (seccomp_load(ctx) != 0) child_fail("seccomp_load failed\n");
  seccomp_release(ctx);
}

}  // namespace

child_process::child_process(const spawn_options& options) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2");
  // Everything the child needs is built before fork(): after it only async-signal-safe calls and
  // the seccomp set-up run.
  std::vector<std::string> args{CONNECT_BINARY};
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  // An extra variable replaces an inherited one of the same name (getenv returns the first match, so
  // appending would leave the inherited HOME in force).
  const auto overridden = [&options](std::string_view entry) {
    const std::string_view name = entry.substr(0, entry.find('='));
    for (const std::string& extra : options.extra_env)
      if (std::string_view(extra).substr(0, extra.find('=')) == name) return true;
    return false;
  };
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), options.extra_env.begin(), options.extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    if (options.refuse_io_uring) refuse_io_uring_in_child();
    ::execve(argv[0], argv.data(), envp.data());
    child_fail("execve failed\n");
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
}

child_process::~child_process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(10));
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void child_process::pump(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (::poll(fds, 2, static_cast<int>(timeout.count())) <= 0) return;
  char buf[4096];
  for (int i = 0; i < 2; ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
    const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
    if (n > 0) (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
    if (n == 0) {  // EOF: stop polling this pipe
      ::close(fds[i].fd);
      (i == 0 ? out_fd_ : err_fd_) = -1;
    }
  }
}

bool child_process::wait_for_stdout(const std::string& needle, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  while (out_.find(needle) == std::string::npos) {
    if (clock::now() >= until || (out_fd_ < 0 && err_fd_ < 0)) return false;
    if (out_fd_ < 0 || err_fd_ < 0) {
      if (wait_exit(std::chrono::milliseconds(0))) {
        pump(std::chrono::milliseconds(0));
        return out_.find(needle) != std::string::npos;
      }
    }
    pump(std::chrono::milliseconds(50));
  }
  return true;
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  while (!status_) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (clock::now() >= until) return std::nullopt;
    if (out_fd_ >= 0 || err_fd_ >= 0) {
      pump(std::chrono::milliseconds(20));
    } else {
      ::usleep(20'000);
    }
  }
  while (out_fd_ >= 0 || err_fd_ >= 0) pump(std::chrono::milliseconds(100));
  return status_;
}

void child_process::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

const std::string& child_process::out() {
  pump(std::chrono::milliseconds(0));
  return out_;
}
const std::string& child_process::err() {
  pump(std::chrono::milliseconds(0));
  return err_;
}

unsigned running_port(const std::string& stdout_text) {
  static const std::regex line("proxy running on port ([0-9]+)");
  std::smatch m;
  if (!std::regex_search(stdout_text, m, line)) return 0;
  return static_cast<unsigned>(std::stoul(m[1]));
}

std::string http_request(unsigned port, const std::string& request, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{};
  tv.tv_sec = static_cast<long>(deadline.count() / 1000);
  tv.tv_usec = static_cast<long>((deadline.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    while (clock::now() < until) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      response.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return response;
}

}  // namespace cproxy::test
