// run_program: any program (the connect binary, getent, unshare) run to its end with extra environment,
// stdout and stderr captured, bounded by a deadline (SIGKILL by pid past it), optionally as the user
// nobody when the tests run as root (what `hosts` does without root can only be seen that way).
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace cproxy::test {

inline constexpr uid_t nobody_uid = 65534;

struct program_result {
  int code = -1;  // exit code, 128 + signal, or -1 when it could not run or hit the deadline
  std::string out;
  std::string err;
};

inline program_result run_program(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& extra_env, bool as_nobody = false,
                                  std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  program_result r;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    bool replaced = false;
    for (const std::string& extra : extra_env)
      replaced =
          replaced || std::string_view(extra).substr(0, extra.find('=')) == entry.substr(0, entry.find('='));
    if (!replaced) env_strings.emplace_back(entry);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp, args;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return r;
  const pid_t pid = ::fork();
  if (pid < 0) return r;
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    if (as_nobody && (::setgroups(0, nullptr) != 0 || ::setgid(nobody_uid) != 0 || ::setuid(nobody_uid) != 0))
      ::_exit(126);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const auto end = std::chrono::steady_clock::now() + deadline;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool killed = false;
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!killed) r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// The absolute path of `name` in $PATH and the sbin folders, or "".
inline std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path ? path : "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin";
  for (std::size_t at = 0; at <= dirs.size();) {
    const std::size_t colon = std::min(dirs.find(':', at), dirs.size());
    const std::string candidate = dirs.substr(at, colon - at) + "/" + name;
    if (colon > at && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  return {};
}

// The connect binary inside a mount namespace of its own where /etc/hosts and /etc/nsswitch.conf are the
// given files: getaddrinfo then answers from `hosts_file` alone, whatever resolver the machine has, and
// nothing outside the namespace sees the mounts. Root needs only `unshare -m`; others map themselves
// to root in a user namespace (`-r`).
inline std::vector<std::string> in_resolver_namespace(const std::string& hosts_file,
                                                      const std::string& nsswitch,
                                                      std::vector<std::string> command) {
  std::vector<std::string> argv = {
      "unshare",
      ::geteuid() == 0 ? "-m" : "-rm",
      "sh",
      "-c",
      "mount --bind \"$1\" /etc/hosts && mount --bind \"$2\" /etc/nsswitch.conf && "
      "shift 2 && exec \"$@\"",
      "sh",
      hosts_file,
      nsswitch};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

}  // namespace cproxy::test
