// Helpers of the daemon-level end-to-end tests: a temporary home folder (PRIVATECONNECT_HOME) that
// stops by pid any proxy a failed case left running, the pid its state file names, and a free port.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace cproxy::test {

// The pid proxy-state.json in `home` names, or 0.
inline int state_pid(const std::string& home) {
  std::ifstream state(home + "/proxy-state.json");
  const std::string text((std::istreambuf_iterator<char>(state)), std::istreambuf_iterator<char>());
  const auto at = text.find("\"pid\":");
  return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + 6);
}

struct proxy_home {
  std::string path;
  proxy_home() {
    char pattern[] = "/tmp/connect-e2e-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~proxy_home() {
    if (const int pid = state_pid(path); pid > 0) ::kill(pid, SIGKILL);
    std::filesystem::remove_all(path);
  }
  proxy_home(const proxy_home&) = delete;
  proxy_home& operator=(const proxy_home&) = delete;
  std::string env() const { return "PRIVATECONNECT_HOME=" + path; }
};

// A port that was free a moment ago: bound, read, released (a daemon binds it next).
inline unsigned free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace cproxy::test
