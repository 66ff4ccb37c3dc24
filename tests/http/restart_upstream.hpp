// A dev server that restarts: an HTTP upstream on a fixed 127.0.0.1 port that a test stops (its port then
// refuses) and starts again on the same port, as nodemon or `go run` do on each save. It answers every
// request with 200 and "METHOD TARGET BODY" (so a test sees its request arrived whole), switches a
// WebSocket upgrade to a raw byte echo after its 101, and serves requests carried in a CONNECT tunnel
// like any other. Blocking sockets, one thread per connection, every read bounded.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cproxy::http_test {

class restart_upstream {
 public:
  restart_upstream() { start(); }
  ~restart_upstream() { stop(); }
  restart_upstream(const restart_upstream&) = delete;
  restart_upstream& operator=(const restart_upstream&) = delete;

  unsigned port() const { return port_; }
  std::size_t served() const { return served_.load(); }

  // Listens again (on the same port after the first start).
  void start() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port_));
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 1024) != 0)
      throw std::runtime_error("restart_upstream: cannot listen on port " + std::to_string(port_));
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stopping_ = false;
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  // Closes the listening socket (the port refuses from now on) and every open connection.
  void stop() {
    if (listen_fd_ < 0) return;
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    listen_fd_ = -1;
    {
      std::lock_guard lock(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void accept_loop() {
    for (int i = 0; i < 100000 && !stopping_; ++i) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard lock(mu_);
      open_.push_back(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }

  // Appends what arrives within 20 s; false on EOF, error or deadline.
  static bool fill(int fd, std::string& in) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  static bool send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  void serve(int fd) {
    std::string in;
    for (int request = 0; request < 10000; ++request) {
      std::size_t end = in.find("\r\n\r\n");
      for (int k = 0; end == std::string::npos && k < 10000; ++k) {
        if (!fill(fd, in)) return finish(fd);
        end = in.find("\r\n\r\n");
      }
      if (end == std::string::npos) return finish(fd);
      const std::string head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      std::size_t length = 0;
      const std::size_t cl = head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
      while (in.size() < length)
        if (!fill(fd, in)) return finish(fd);
      const std::string body = in.substr(0, length);
      in.erase(0, length);
      const std::string request_line = head.substr(0, head.find(' ', head.find(' ') + 1));
      ++served_;
      if (head.find("Upgrade: websocket") != std::string::npos) {
        send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        for (int k = 0; k < 10000; ++k) {
          if (!in.empty() && !send_all(fd, in)) break;
          in.clear();
          if (!fill(fd, in)) break;
        }
        return finish(fd);
      }
      const std::string answer = request_line + " " + body;
      if (!send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(answer.size()) + "\r\n\r\n" +
                            answer))
        return finish(fd);
    }
    finish(fd);
  }

  void finish(int fd) {
    std::lock_guard lock(mu_);
    std::erase(open_, fd);
    ::close(fd);
  }

  unsigned port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> served_{0};
  std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace cproxy::http_test
