// connect-hold-bench: how soon held requests are answered once a restarting upstream is back. Per round:
// the upstream (in this process, on a fixed 127.0.0.1 port that a proxy route points at) answers one
// request through the proxy, stops (its port refuses), N clients send a request each through the proxy
// (which holds them), a random pause later the upstream listens again; the time from its listen() to
// the first and to the last answer at the clients is the round's figure. Plain POSIX, no project code.
// Prints one line per round ("round I first_ms F last_ms L") and a summary with p50/p99.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "connect-hold-bench: %s: %s\n", why.c_str(), std::strerror(errno));
  std::exit(1);
}

sockaddr_in loopback(unsigned port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  return a;
}

// The restarting upstream: a listening socket and a thread per connection answering "ok" to each head.
class upstream {
 public:
  explicit upstream(unsigned port) : port_(port) {}
  ~upstream() { stop(); }

  // Listens; returns the moment listen() returned (the upstream is "back" from then on).
  clock_type::time_point start() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(port_);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind " + std::to_string(port_));
    if (::listen(fd_, 1024) != 0) die("listen");
    const clock_type::time_point up = clock_type::now();
    stopping_ = false;
    acceptor_ = std::thread([this] { accept_loop(); });
    return up;
  }

  void stop() {
    if (fd_ < 0) return;
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(fd_);
    fd_ = -1;
    {
      std::lock_guard lock(mu_);
      for (int c : open_) ::shutdown(c, SHUT_RDWR);
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void accept_loop() {
    for (int i = 0; i < 1000000 && !stopping_; ++i) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      const int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard lock(mu_);
      open_.push_back(c);
      threads_.emplace_back([this, c] { serve(c); });
    }
  }

  void serve(int c) {
    std::string in;
    char buf[16384];
    static const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (int k = 0; k < 1000000; ++k) {
      std::size_t end;
      while ((end = in.find("\r\n\r\n")) != std::string::npos) {
        in.erase(0, end + 4);
        if (::send(c, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) break;
      }
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    std::lock_guard lock(mu_);
    std::erase(open_, c);
    ::close(c);
  }

  unsigned port_;
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

int connect_to(unsigned port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect to the proxy");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// One request on a new connection, answered within 5 s: its status line's code, 0 on failure.
int one_request(unsigned port, const std::string& host) {
  const int fd = connect_to(port);
  std::string got;
  if (send_all(fd, "GET /warm HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")) {
    pollfd p{fd, POLLIN, 0};
    char buf[4096];
    for (int k = 0; k < 1000 && ::poll(&p, 1, 5000) > 0; ++k) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got.size() > 12 && got.starts_with("HTTP/1.1 ") ? std::atoi(got.c_str() + 9) : 0;
}

double ms(clock_type::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double rank(std::vector<double> v, double p) {  // nearest rank
  std::sort(v.begin(), v.end());
  const std::size_t i = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::max<std::size_t>(i, 1) - 1];
}

unsigned number(const char* s, const char* what) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(s, &end, 10);
  if (!*s || *end || v == 0 || v > 1000000) {
    std::fprintf(stderr, "connect-hold-bench: %s: '%s' is not a count\n", what, s);
    std::exit(2);
  }
  return static_cast<unsigned>(v);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned proxy_port = 0, upstream_port = 0, requests = 10, rounds = 30, down_min = 300, down_max = 800;
  std::string host = "app.localhost";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--proxy-port")
      proxy_port = number(argv[i + 1], "--proxy-port");
    else if (k == "--upstream-port")
      upstream_port = number(argv[i + 1], "--upstream-port");
    else if (k == "--requests")
      requests = number(argv[i + 1], "--requests");
    else if (k == "--rounds")
      rounds = number(argv[i + 1], "--rounds");
    else if (k == "--down-min-ms")
      down_min = number(argv[i + 1], "--down-min-ms");
    else if (k == "--down-max-ms")
      down_max = number(argv[i + 1], "--down-max-ms");
    else if (k == "--host")
      host = argv[i + 1];
    else {
      std::fprintf(stderr, "connect-hold-bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (!proxy_port || !upstream_port || down_max < down_min) {
    std::fprintf(stderr,
                 "usage: connect-hold-bench --proxy-port P --upstream-port U [--requests N] [--rounds R]\n"
                 "       [--down-min-ms A] [--down-max-ms B] [--host app.localhost]\n");
    return 2;
  }
  upstream up(upstream_port);
  std::mt19937 rng(12345);
  std::uniform_int_distribution<unsigned> down(down_min, down_max);
  std::vector<double> firsts, lasts;
  unsigned failed = 0;
  for (unsigned round = 1; round <= rounds; ++round) {
    up.start();
    if (one_request(proxy_port, host) != 200) {
      std::fprintf(stderr, "connect-hold-bench: round %u: the warm-up request did not get a 200\n", round);
      return 1;
    }
    up.stop();
    std::vector<int> clients;
    for (unsigned i = 0; i < requests; ++i) {
      clients.push_back(connect_to(proxy_port));
      if (!send_all(clients.back(),
                    "GET /held/" + std::to_string(i) + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"))
        die("send");
    }
    // The downtime: long enough for every request to be held, at a random phase of the proxy's retries.
    std::this_thread::sleep_for(std::chrono::milliseconds(down(rng)));
    const clock_type::time_point back = up.start();
    std::vector<pollfd> polls;
    for (int fd : clients) polls.push_back({fd, POLLIN, 0});
    std::vector<std::string> got(clients.size());
    std::size_t answered = 0, ok = 0;
    clock_type::time_point first{}, last{};
    const clock_type::time_point give_up = back + std::chrono::seconds(15);
    while (answered < clients.size() && clock_type::now() < give_up) {
      if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
      const clock_type::time_point now = clock_type::now();
      for (std::size_t i = 0; i < polls.size(); ++i) {
        if (polls[i].fd < 0 || !(polls[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        const ssize_t n = ::recv(polls[i].fd, buf, sizeof buf, 0);
        if (n > 0) got[i].append(buf, static_cast<std::size_t>(n));
        if (n <= 0 || got[i].find("\r\n\r\n") != std::string::npos) {
          if (got[i].starts_with("HTTP/1.1 200")) ++ok;
          if (answered++ == 0) first = now;
          last = now;
          polls[i].fd = -1;
        }
      }
    }
    for (int fd : clients) ::close(fd);
    up.stop();
    if (ok != clients.size()) {
      ++failed;
      std::printf("round %u failed: %zu of %zu answered 200\n", round, ok, clients.size());
      continue;
    }
    firsts.push_back(ms(first - back));
    lasts.push_back(ms(last - back));
    std::printf("round %u first_ms %.3f last_ms %.3f\n", round, firsts.back(), lasts.back());
    std::fflush(stdout);
  }
  if (firsts.empty()) return 1;
  std::printf(
      "summary requests %u rounds %zu failed %u first_p50_ms %.1f first_p99_ms %.1f first_max_ms %.1f "
      "last_p50_ms %.1f last_p99_ms %.1f\n",
      requests, firsts.size(), failed, rank(firsts, 50), rank(firsts, 99), rank(firsts, 100), rank(lasts, 50),
      rank(lasts, 99));
  return failed ? 1 : 0;
}
