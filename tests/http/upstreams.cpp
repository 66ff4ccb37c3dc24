// Implementation of upstreams.hpp over blocking POSIX sockets and poll() for the deadlines.
#include "http/upstreams.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cproxy::http_test {
namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t recorded_body_limit = 1 << 20;

int remaining_ms(clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 100));
}

int listen_loopback(unsigned& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("upstream socket: " + std::string(std::strerror(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1024) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("upstream listen: " + std::string(std::strerror(errno)));
  }
  port = ntohs(addr.sin_port);
  return fd;
}

recorded_request for_the_record(const recorded_request& r) {
  recorded_request copy = r;
  if (copy.body.size() > recorded_body_limit) copy.body.resize(recorded_body_limit);
  return copy;
}

}  // namespace

// ---- upstream_conn

upstream_conn::upstream_conn(upstream_server& server, int fd, std::size_t index)
    : server_(server), fd_(fd), index_(index) {}

upstream_conn::~upstream_conn() {
  server_.forget_fd(fd_);
  ::close(fd_);
}

upstream_conn::got upstream_conn::fill(clock::time_point until) {
  for (;;) {
    if (server_.stopping()) return got::eof;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(until));
    if (ready == 0) {
      if (clock::now() >= until) return got::timeout;
      continue;  // 100 ms slices so that stop() is noticed
    }
    char buf[64 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      server_.record_raw(index_, std::string_view(buf, static_cast<std::size_t>(n)));
      return got::data;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return got::eof;
  }
}

std::optional<recorded_request> upstream_conn::read_request(std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  while (in_.find("\r\n\r\n") == std::string::npos) {
    if (in_.size() > 1024 * 1024 || fill(until) != got::data) return std::nullopt;
  }
  const std::size_t head_end = in_.find("\r\n\r\n") + 4;
  recorded_request r;
  r.connection = index_;
  r.head = parse_head(in_.substr(0, head_end));
  in_.erase(0, head_end);
  const std::string& line = r.head.start_line;
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.find(' ', sp1 == std::string::npos ? sp1 : sp1 + 1);
  r.method = line.substr(0, sp1);
  if (sp1 != std::string::npos)
    r.target = line.substr(sp1 + 1, sp2 == std::string::npos ? sp2 : sp2 - sp1 - 1);
  if (sp2 != std::string::npos) r.version = line.substr(sp2 + 1);
  const std::size_t slot = server_.record_request(r);

  const bool chunked = r.head.has_token("transfer-encoding", "chunked");
  const auto cl = r.head.get("content-length");
  const bool has_body = chunked || (cl && *cl != "0");
  // A target naming "ignores-expect" plays a server without Expect support: it never sends a 100.
  if (has_body && in_.empty() && r.head.has_token("expect", "100-continue") &&
      r.target.find("ignores-expect") == std::string::npos) {
    write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (chunked) {
    r.chunked = true;
    chunked_decoder decoder;
    for (;;) {
      const auto st = decoder.feed(in_);
      if (st == chunked_decoder::status::complete) {
        r.body_complete = true;
        break;
      }
      if (st == chunked_decoder::status::bad || fill(until) != got::data) break;
    }
    r.body = std::move(decoder.body);
    r.trailers = std::move(decoder.trailers);
  } else if (cl) {
    std::size_t n = 0;
    try {
      n = std::stoull(*cl);
    } catch (const std::exception&) {
      n = 0;
    }
    while (in_.size() < n && fill(until) == got::data) {
    }
    r.body_complete = in_.size() >= n;
    r.body = in_.substr(0, std::min(n, in_.size()));
    in_.erase(0, r.body.size());
  } else {
    r.body_complete = true;
  }
  r.body_size = r.body.size();
  server_.update_request(slot, r);
  return r;
}

std::optional<std::string> upstream_conn::read_some(std::chrono::milliseconds deadline) {
  if (in_.empty() && fill(clock::now() + deadline) != got::data) return std::nullopt;
  return std::exchange(in_, std::string());
}

bool upstream_conn::write(std::string_view bytes, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  while (!bytes.empty()) {
    if (server_.stopping()) return false;
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(until)) == 0 && clock::now() >= until) return false;
  }
  return true;
}

bool upstream_conn::wait_peer_close(std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  for (;;) {
    const got g = fill(until);
    if (g == got::eof) return true;
    if (g == got::timeout) return false;
  }
}

void upstream_conn::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

// ---- upstream_server

upstream_server::upstream_server(std::string name, handler h, bool record_raw)
    : name_(std::move(name)), handler_(std::move(h)), record_raw_(record_raw) {
  listen_fd_ = listen_loopback(port_);
  acceptor_ = std::thread([this] { accept_loop(); });
}

upstream_server::~upstream_server() {
  stop();
}

void upstream_server::accept_loop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // Small scripted writes (SSE events) must leave at once, not wait for Nagle.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(mu_);
    if (stop_.load()) {
      ::close(fd);
      break;
    }
    const std::size_t index = raw_.size();
    raw_.emplace_back();
    open_fds_.push_back(fd);
    threads_.emplace_back([this, fd, index] {
      upstream_conn c(*this, fd, index);
      try {
        handler_(c);
      } catch (const std::exception&) {
        // A handler failing (Beast throws on a reset peer) ends its connection only.
      }
    });
  }
}

void upstream_server::stop() {
  if (stop_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  ::close(listen_fd_);
}

void upstream_server::forget_fd(int fd) {
  std::lock_guard lock(mu_);
  std::erase(open_fds_, fd);
}

void upstream_server::record_raw(std::size_t connection, std::string_view bytes) {
  if (!record_raw_) return;
  std::lock_guard lock(mu_);
  raw_[connection].append(bytes);
}

std::size_t upstream_server::record_request(const recorded_request& r) {
  std::lock_guard lock(mu_);
  requests_.push_back(for_the_record(r));
  return requests_.size() - 1;
}

void upstream_server::update_request(std::size_t slot, const recorded_request& r) {
  std::lock_guard lock(mu_);
  requests_[slot] = for_the_record(r);
}

std::vector<recorded_request> upstream_server::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<recorded_request> upstream_server::requests_for(std::string_view needle) const {
  std::lock_guard lock(mu_);
  std::vector<recorded_request> out;
  for (const auto& r : requests_) {
    if (r.target.find(needle) != std::string::npos) out.push_back(r);
  }
  return out;
}

std::vector<std::string> upstream_server::raw_connections() const {
  std::lock_guard lock(mu_);
  return raw_;
}

std::size_t upstream_server::accepted() const {
  std::lock_guard lock(mu_);
  return raw_.size();
}

bool upstream_server::received(std::string_view needle) const {
  std::lock_guard lock(mu_);
  return std::any_of(raw_.begin(), raw_.end(),
                     [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

// ---- scripted upstream and helpers

std::string simple_response(int status, std::string_view reason, std::string_view body,
                            const std::vector<std::string>& extra_lines) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  for (const auto& l : extra_lines) out += l + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

bool answer_with_head(upstream_conn& c, const recorded_request& r) {
  const bool close = r.head.has_token("connection", "close") || r.version == "HTTP/1.0";
  std::vector<std::string> lines{"Content-Type: text/plain", "X-Upstream: " + c.server().name()};
  if (close) lines.emplace_back("Connection: close");
  const std::string body = r.method == "HEAD" ? std::string() : r.head.raw;
  return c.write(simple_response(200, "OK", body, lines)) && !close;
}

scripted_upstream::scripted_upstream(std::string name, bool record_raw) : table_(std::make_shared<table>()) {
  std::shared_ptr<table> t = table_;
  server_ = std::make_unique<upstream_server>(
      std::move(name),
      [t](upstream_conn& c) {
        for (int i = 0; i < 100000; ++i) {
          // 60 s: a 64 MiB body under a sanitizer build. Idle connections end when the server stops.
          const auto r = c.read_request(60s);
          if (!r) return;
          if (!r->body_complete) return;  // the proxy gave up mid-body: nothing to answer
          script chosen;
          std::size_t best = 0;
          {
            std::lock_guard lock(t->mu);
            for (const auto& [part, s] : t->scripts) {
              if (r->target.find(part) != std::string::npos && part.size() > best) {
                best = part.size();
                chosen = s;
              }
            }
          }
          const bool keep = chosen ? chosen(c, *r) : answer_with_head(c, *r);
          if (!keep) return;
        }
      },
      record_raw);
}

void scripted_upstream::on(std::string target_part, script s) {
  std::lock_guard lock(table_->mu);
  table_->scripts.emplace_back(std::move(target_part), std::move(s));
}

std::unique_ptr<upstream_server> make_byte_echo(std::string name) {
  return std::make_unique<upstream_server>(std::move(name), [](upstream_conn& c) {
    for (int i = 0; i < 1'000'000; ++i) {
      const auto bytes = c.read_some();
      if (!bytes || !c.write(*bytes)) return;
    }
  });
}

closed_port::closed_port() {
  v4_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof v4;
  if (v4_ < 0 || ::bind(v4_, reinterpret_cast<sockaddr*>(&v4), sizeof v4) != 0 ||
      ::getsockname(v4_, reinterpret_cast<sockaddr*>(&v4), &len) != 0) {
    const int err = errno;
    if (v4_ >= 0) ::close(v4_);
    throw std::runtime_error("closed_port: " + std::string(std::strerror(err)));
  }
  port_ = ntohs(v4.sin_port);
  // "localhost" routes try ::1 too: hold that side of the port as well where IPv6 is there.
  v6_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (v6_ >= 0) {
    const int one = 1;
    ::setsockopt(v6_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_addr = in6addr_loopback;
    v6.sin6_port = htons(static_cast<std::uint16_t>(port_));
    if (::bind(v6_, reinterpret_cast<sockaddr*>(&v6), sizeof v6) != 0) {
      ::close(v6_);
      v6_ = -1;
    }
  }
}

closed_port::~closed_port() {
  ::close(v4_);
  if (v6_ >= 0) ::close(v6_);
}

void gate::open_to(int n) {
  {
    std::lock_guard lock(mu_);
    open_ = std::max(open_, n);
  }
  cv_.notify_all();
}

bool gate::wait_for(int k, std::chrono::milliseconds deadline) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return open_ >= k; });
}

}  // namespace cproxy::http_test
