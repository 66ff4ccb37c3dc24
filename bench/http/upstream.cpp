// connect-http-upstream: the HTTP bench's upstream. One thread, epoll, non-blocking sockets: keep-alive
// HTTP/1.1, GET / -> 18 bytes, GET /64m -> 64 MiB, GET /ws with a WebSocket upgrade -> echoes frames.
// Usage: connect-http-upstream [--port P]   (0 = any; prints "listening PORT"; SIGTERM/SIGINT stop it)
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../relay/posix_net.hpp"
#include "http_bench.hpp"

namespace bench = cproxy::bench;
namespace hb = cproxy::bench::http;

namespace {

constexpr std::size_t max_head = 64 * 1024;
constexpr std::size_t flush_at = 64 * 1024;  // pipelined small answers are batched up to this much

struct connection {
  int fd = -1;
  std::string in;
  std::size_t in_off = 0;
  std::string out;
  std::size_t out_off = 0;
  std::uint64_t body_sent = 0;  // of the big body in flight
  std::uint64_t body_left = 0;
  bool close_after = false;
  bool websocket = false;
  std::uint32_t events = 0;  // the epoll interest now registered
};

struct stats {
  std::uint64_t connections = 0, requests = 0, ws_frames = 0, bad = 0;
} totals;

int epfd = -1;
std::vector<std::unique_ptr<connection>> conns;  // by fd
std::vector<char> pattern;                       // 1 MiB of the big body, repeated

const std::string small_answer =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n" + std::string(hb::small_body);
const std::string small_answer_close =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\n" +
    std::string(hb::small_body);

void set_interest(connection& c, std::uint32_t events) {
  if (c.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = c.fd;
  ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
  c.events = events;
}

void close_connection(int fd) {
  ::close(fd);  // also leaves the epoll set
  conns[static_cast<std::size_t>(fd)].reset();
}

// Sends what is queued. False on a broken connection; leaves the rest queued on EAGAIN.
bool flush(connection& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    c.out_off += static_cast<std::size_t>(n);
  }
  c.out.clear();
  c.out_off = 0;
  while (c.body_left > 0) {
    const std::size_t at = static_cast<std::size_t>(c.body_sent % hb::pattern_period);
    const std::size_t len =
        static_cast<std::size_t>(std::min<std::uint64_t>(c.body_left, pattern.size() - at));
    const ssize_t n = ::send(c.fd, pattern.data() + at, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    c.body_sent += static_cast<std::uint64_t>(n);
    c.body_left -= static_cast<std::uint64_t>(n);
  }
  return true;
}

bool pending(const connection& c) {
  return c.out_off < c.out.size() || c.body_left > 0;
}

enum class parsed { answered, need_more, fatal };

// One WebSocket frame from the client (masked): echo it unmasked; close answers close.
parsed ws_frame(connection& c) {
  const std::size_t avail = c.in.size() - c.in_off;
  const auto* p = reinterpret_cast<const unsigned char*>(c.in.data() + c.in_off);
  if (avail < 2) return parsed::need_more;
  const unsigned opcode = p[0] & 0x0F;
  const bool masked = (p[1] & 0x80) != 0;
  std::uint64_t len = p[1] & 0x7F;
  std::size_t hdr = 2;
  if (len == 126) {
    if (avail < 4) return parsed::need_more;
    len = (std::uint64_t{p[2]} << 8) | p[3];
    hdr = 4;
  } else if (len == 127) {
    if (avail < 10) return parsed::need_more;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    hdr = 10;
  }
  if (len > (std::uint64_t{16} << 20)) return parsed::fatal;
  const std::size_t mask_at = hdr;
  if (masked) hdr += 4;
  if (avail < hdr + len) return parsed::need_more;
  std::string& o = c.out;
  const unsigned reply_op = opcode == 0x9 ? 0xA : opcode;  // ping -> pong
  o.push_back(static_cast<char>((p[0] & 0x80) | reply_op));
  if (len < 126) {
    o.push_back(static_cast<char>(len));
  } else if (len < 65536) {
    o.push_back(static_cast<char>(126));
    o.push_back(static_cast<char>(len >> 8));
    o.push_back(static_cast<char>(len & 0xFF));
  } else {
    o.push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) o.push_back(static_cast<char>(len >> (8 * i)));
  }
  const std::size_t start = o.size();
  o.append(reinterpret_cast<const char*>(p + hdr), static_cast<std::size_t>(len));
  if (masked)
    for (std::size_t i = 0; i < len; ++i) o[start + i] = static_cast<char>(o[start + i] ^ p[mask_at + i % 4]);
  c.in_off += hdr + static_cast<std::size_t>(len);
  ++totals.ws_frames;
  if (opcode == 0x8) c.close_after = true;
  return parsed::answered;
}

parsed http_request(connection& c) {
  const std::string_view data(c.in.data() + c.in_off, c.in.size() - c.in_off);
  const std::size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return data.size() > max_head ? parsed::fatal : parsed::need_more;
  const std::string_view head = data.substr(0, end + 2);
  const std::size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1) return parsed::fatal;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!hb::header_value(head, "transfer-encoding").empty()) return parsed::fatal;  // GETs only
  std::uint64_t body = 0;
  for (char ch : hb::header_value(head, "content-length")) {
    if (ch < '0' || ch > '9') return parsed::fatal;
    body = body * 10 + static_cast<unsigned>(ch - '0');
  }
  if (body > max_head) return parsed::fatal;
  if (data.size() < end + 4 + body) return parsed::need_more;  // a request body is read and dropped
  const std::string_view connection_hdr = hb::header_value(head, "connection");
  const bool http10 = version == "HTTP/1.0";
  // Connection may list tokens ("keep-alive, Upgrade"); look for the one that matters.
  const auto has_token = [&](std::string_view token) {
    std::string lower(connection_hdr);
    for (char& ch : lower) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    return lower.find(token) != std::string::npos;
  };
  bool keep_alive = http10 ? has_token("keep-alive") : !has_token("close");
  ++totals.requests;
  const bool head_only = method == "HEAD";
  if (target == "/ws" && hb::iequals(hb::header_value(head, "upgrade"), "websocket")) {
    const std::string_view key = hb::header_value(head, "sec-websocket-key");
    if (key.empty()) return parsed::fatal;
    c.out +=
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Accept: ";
    c.out += hb::ws_accept(key);
    c.out += "\r\n\r\n";
    c.websocket = true;
  } else if (target == "/") {
    if (head_only)
      c.out += "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n";
    else
      c.out += keep_alive ? small_answer : small_answer_close;
  } else if (target == "/64m") {
    c.out += "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ";
    c.out += std::to_string(hb::big_body_size);
    c.out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    if (!head_only) {
      c.body_sent = 0;
      c.body_left = hb::big_body_size;
    }
  } else {
    ++totals.bad;
    c.out += "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n";
    c.out += keep_alive ? "\r\nnot found\n" : "Connection: close\r\n\r\nnot found\n";
  }
  c.in_off += end + 4 + static_cast<std::size_t>(body);
  if (!keep_alive) c.close_after = true;
  return parsed::answered;
}

// Answers what is buffered (small answers batched up to flush_at), sends, and picks the epoll
// interest: EPOLLOUT while output waits (input stays buffered), else EPOLLIN. Closes when done.
void service(connection& c) {
  for (;;) {
    bool answered = false;
    while (!c.close_after && c.body_left == 0 && c.out.size() < flush_at) {
      const parsed r = c.websocket ? ws_frame(c) : http_request(c);
      if (r == parsed::fatal) {
        ++totals.bad;
        close_connection(c.fd);
        return;
      }
      if (r == parsed::need_more) break;
      answered = true;
    }
    if (!flush(c)) {
      close_connection(c.fd);
      return;
    }
    if (pending(c)) {
      set_interest(c, EPOLLOUT);
      return;
    }
    if (c.close_after) {
      close_connection(c.fd);
      return;
    }
    if (!answered) break;
  }
  if (c.in_off == c.in.size()) {
    c.in.clear();
    c.in_off = 0;
  } else if (c.in_off > 64 * 1024) {
    c.in.erase(0, c.in_off);
    c.in_off = 0;
  }
  set_interest(c, EPOLLIN);
}

void on_readable(connection& c) {
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      close_connection(c.fd);
      return;
    }
    c.in.append(buf, static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < sizeof buf) break;
  }
  service(c);
}

void on_accept(int lfd) {
  for (;;) {
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or out of descriptors: the backlog keeps them for the next round
    }
    bench::set_nodelay(fd);
    if (conns.size() <= static_cast<std::size_t>(fd)) conns.resize(static_cast<std::size_t>(fd) + 1024);
    auto c = std::make_unique<connection>();
    c->fd = fd;
    c->events = EPOLLIN;
    epoll_event ev{};
    ev.events = c->events;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    conns[static_cast<std::size_t>(fd)] = std::move(c);
    ++totals.connections;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--port" && i + 1 < argc) {
      const std::string_view v = argv[++i];
      port = bench::parse_port(v);
      if (port == 0 && v != "0") {
        std::fprintf(stderr, "connect-http-upstream: bad port '%s'\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: connect-http-upstream [--port P]\n");
      return 2;
    }
  }
  pattern.resize(hb::pattern_period);
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = hb::body_byte(i);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  const int sfd = ::signalfd(-1, &stop, SFD_CLOEXEC);
  if (sfd < 0) bench::die("signalfd");

  std::uint16_t bound = 0;
  const int lfd = bench::listen_loopback(port, &bound);
  ::listen(lfd, 4096);  // a deeper backlog than the helper's, for the connection-per-request load
  if (::fcntl(lfd, F_SETFL, ::fcntl(lfd, F_GETFL) | O_NONBLOCK) != 0) bench::die("fcntl");
  epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) bench::die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = sfd;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
  conns.resize(4096);

  std::printf("listening %u\n", bound);
  std::fflush(stdout);
  std::fprintf(stderr, "upstream: epoll, one thread; GET / (%zu B), GET /64m (%llu B), GET /ws (echo)\n",
               hb::small_body.size(), static_cast<unsigned long long>(hb::big_body_size));

  epoll_event events[256];
  for (bool running = true; running;) {
    const int n = ::epoll_wait(epfd, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      bench::die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        on_accept(lfd);
        continue;
      }
      if (fd == sfd) {
        signalfd_siginfo si{};
        if (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si))
          std::fprintf(stderr, "upstream: stopped by signal %u\n", si.ssi_signo);
        running = false;
        continue;
      }
      connection* c =
          static_cast<std::size_t>(fd) < conns.size() ? conns[static_cast<std::size_t>(fd)].get() : nullptr;
      if (!c) continue;
      const std::uint32_t e = events[i].events;
      if ((e & EPOLLOUT) != 0) {
        service(*c);
      } else if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        on_readable(*c);
      }
    }
  }
  std::fprintf(
      stderr, "upstream: %llu connections, %llu requests, %llu websocket frames, %llu bad\n",
      static_cast<unsigned long long>(totals.connections), static_cast<unsigned long long>(totals.requests),
      static_cast<unsigned long long>(totals.ws_frames), static_cast<unsigned long long>(totals.bad));
  return 0;
}
