// fake_hub: the hub's side of GET /v1/services on a loopback port, plain or TLS, for the hub client's
// tests. One connection at a time on its own thread; what it does with the next request is switched at
// any time: answer, answer late, hang until the client gives up, or refuse connections (the listener
// closed, then opened again on the same port). The TLS identity can change between connections.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/unit_test.hpp"

namespace cproxy::test {

class fake_hub {
 public:
  enum class mode { answer, hang, refuse };
  struct ctx_free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_free>;

  explicit fake_hub(std::string answer, ctx_ptr tls = nullptr)
      : answer_(std::move(answer)), tls_(std::move(tls)) {
    listen_fd_ = listen_on(0);
    BOOST_TEST_REQUIRE(listen_fd_ >= 0);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~fake_hub() {
    stop_ = true;
    thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  fake_hub(const fake_hub&) = delete;
  fake_hub& operator=(const fake_hub&) = delete;

  std::uint16_t port() const { return port_; }
  std::size_t requests() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  // Connections accepted (a TLS client that refuses the certificate makes one, but no request).
  std::size_t connections() const { return connections_; }
  std::vector<std::string> request_texts() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  void answer(std::string text, std::chrono::milliseconds delay = {}) {
    std::lock_guard lock(mutex_);
    answer_ = std::move(text);
    delay_ = delay;
    mode_ = mode::answer;
  }
  void hang() {
    std::lock_guard lock(mutex_);
    mode_ = mode::hang;
  }
  // Connections are refused from the next accept on; answer() or hang() opens the port again.
  void refuse() {
    std::lock_guard lock(mutex_);
    mode_ = mode::refuse;
  }
  void serve_tls(ctx_ptr tls) {
    std::lock_guard lock(mutex_);
    tls_ = std::move(tls);
  }

 private:
  bool wait_readable(int fd) const {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  void sleep_unless_stopped(std::chrono::milliseconds d) const {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(slice_);
  }
  // A loopback listener with SO_REUSEADDR from the start: the connections it accepted inherit it, so
  // their TIME_WAIT does not keep a listener made again on the same port from binding.
  static int listen_on(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  // Refusing: the listener goes; it comes back on the same port when the mode changes.
  void follow_refuse() {
    for (;;) {
      mode m;
      {
        std::lock_guard lock(mutex_);
        m = mode_;
      }
      if (m == mode::refuse && listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
      } else if (m != mode::refuse && listen_fd_ < 0) {
        listen_fd_ = listen_on(port_);
      }
      if (listen_fd_ >= 0 || stop_) return;
      std::this_thread::sleep_for(slice_);
    }
  }
  void run() {
    // SSL_write() and alerts use write(): a client that hung up must not kill the suite with SIGPIPE.
    sigset_t sigpipe;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
    while (!stop_) {
      follow_refuse();
      if (listen_fd_ < 0) break;
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      serve(fd);
      ::close(fd);
    }
  }
  void serve(int fd) {
    SSL* ssl = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (tls_) ssl = SSL_new(tls_.get());
    }
    if (ssl) {
      SSL_set_fd(ssl, fd);
      timeval tv{2, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (SSL_accept(ssl) != 1) {  // a client that does not trust us hangs up here
        SSL_free(ssl);
        return;
      }
    }
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      if (!wait_readable(fd)) break;
      const int n = ssl ? SSL_read(ssl, buf, sizeof buf) : static_cast<int>(::recv(fd, buf, sizeof buf, 0));
      if (n <= 0) break;
      request.append(buf, static_cast<std::size_t>(n));
    }
    std::string answer;
    std::chrono::milliseconds delay{};
    mode m;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
      answer = answer_;
      delay = delay_;
      m = mode_;
    }
    if (m == mode::hang) {
      // Until the client gives up (EOF or reset) or the end.
      while (wait_readable(fd) && ::recv(fd, buf, sizeof buf, 0) > 0) {
      }
    } else {
      sleep_unless_stopped(delay);
      if (ssl) {
        SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
        SSL_shutdown(ssl);
      } else {
        ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      }
    }
    if (ssl) SSL_free(ssl);
  }

  static constexpr std::chrono::milliseconds slice_{5};
  mutable std::mutex mutex_;
  std::string answer_;
  std::chrono::milliseconds delay_{};
  mode mode_ = mode::answer;
  ctx_ptr tls_;
  std::vector<std::string> requests_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> connections_{0};
  std::thread thread_;
};

}  // namespace cproxy::test
