// Blocking POSIX servers on loopback for tests whose far side is not the proxy under test (a fake hub, an
// upstream page): a listening socket on 127.0.0.1, and a server that answers one request head at a time.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "support/unit_test.hpp"

namespace cproxy::test {

struct posix_listener {
  int fd = -1;  // the caller's to close
  std::uint16_t port = 0;
};

// A blocking TCP listener on 127.0.0.1 with a port the kernel picks.
inline posix_listener posix_listen_loopback(int backlog = 16) {
  posix_listener l;
  l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST_REQUIRE(::bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  BOOST_TEST_REQUIRE(::listen(l.fd, backlog) == 0);
  socklen_t len = sizeof a;
  ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len);
  l.port = ntohs(a.sin_port);
  return l;
}

// Serves connections one at a time on its own thread: reads a request head (up to its blank line, EOF or
// 2 s of silence), sends what `answer` returns for it, and closes the connection.
class request_head_server {
 public:
  using answerer = std::function<std::string(const std::string& request)>;

  explicit request_head_server(answerer answer) : answer_(std::move(answer)) {
    const posix_listener l = posix_listen_loopback();
    listen_fd_ = l.fd;
    port_ = l.port;
    thread_ = std::thread([this] { run(); });
  }
  ~request_head_server() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  request_head_server(const request_head_server&) = delete;
  request_head_server& operator=(const request_head_server&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{2, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      const std::string answer = answer_(request);
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(fd);
    }
  }

  answerer answer_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cproxy::test
