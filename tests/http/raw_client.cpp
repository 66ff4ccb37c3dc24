// Implementation of raw_client.hpp over blocking POSIX sockets and poll() for the deadlines.
#include "http/raw_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cproxy::http_test {
namespace {

using clock = std::chrono::steady_clock;

int remaining_ms(clock::time_point until) {
  const auto left = std::chrono::duration_cast<ms>(until - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

}  // namespace

std::string printable(std::string_view bytes, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (bytes.size() > limit) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

raw_client::raw_client(unsigned port, ms deadline) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    error_ = std::string("connect: ") + std::strerror(errno);
    return;
  }
  pollfd p{fd_, POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(deadline.count())) != 1) {
    error_ = "connect: no answer within the deadline";
    return;
  }
  int so_error = 0;
  socklen_t len = sizeof so_error;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
  if (so_error != 0) {
    error_ = std::string("connect: ") + std::strerror(so_error);
    return;
  }
  connected_ = true;
}

raw_client::~raw_client() {
  close();
}

raw_client::raw_client(raw_client&& other) noexcept
    : fd_(other.fd_),
      in_(std::move(other.in_)),
      eof_(other.eof_),
      connected_(other.connected_),
      error_(std::move(other.error_)) {
  other.fd_ = -1;
}

void raw_client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool raw_client::send(std::string_view bytes, ms deadline) {
  const auto until = clock::now() + deadline;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      error_ = std::string("send: ") + std::strerror(errno);
      return false;
    }
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(until)) == 0) {
      error_ = "send: the peer did not take the bytes within the deadline";
      return false;
    }
  }
  return true;
}

void raw_client::shutdown_write() {
  ::shutdown(fd_, SHUT_WR);
}

raw_client::got raw_client::fill(clock::time_point until) {
  if (eof_) return got::eof;
  for (;;) {
    char buf[64 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      return got::data;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      // EOF, or a reset: both mean the proxy closed this connection.
      eof_ = true;
      return got::eof;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(until)) == 0) return got::timeout;
  }
}

bool raw_client::read_until(std::string_view needle, ms deadline) {
  const auto until = clock::now() + deadline;
  while (in_.find(needle) == std::string::npos) {
    const got g = fill(until);
    if (g == got::eof) {
      error_ = "closed before '" + printable(needle) + "' arrived; got: " + printable(in_);
      return false;
    }
    if (g == got::timeout) {
      error_ = "no '" + printable(needle) + "' within " + std::to_string(deadline.count()) +
               " ms; got: " + printable(in_);
      return false;
    }
  }
  return true;
}

bool raw_client::read_at_least(std::size_t n, ms deadline) {
  const auto until = clock::now() + deadline;
  while (in_.size() < n) {
    const got g = fill(until);
    if (g != got::data) {
      error_ = (g == got::eof ? "closed" : "timed out") + std::string(" after ") +
               std::to_string(in_.size()) + " of " + std::to_string(n) + " bytes";
      return false;
    }
  }
  return true;
}

std::optional<http_response> raw_client::read_response(ms deadline, bool head_request, bool connect_request) {
  const auto until = clock::now() + deadline;
  error_.clear();
  if (!read_until("\r\n\r\n", std::chrono::duration_cast<ms>(until - clock::now()))) return std::nullopt;
  const std::size_t head_end = in_.find("\r\n\r\n") + 4;
  http_response r;
  r.head = parse_head(in_.substr(0, head_end));
  in_.erase(0, head_end);
  const std::string& line = r.head.start_line;
  if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') {
    error_ = "not a status line: " + printable(line);
    return std::nullopt;
  }
  r.status = std::atoi(line.c_str() + 9);
  const bool no_body = head_request || (connect_request && r.status / 100 == 2) || r.status / 100 == 1 ||
                       r.status == 204 || r.status == 304;
  if (no_body) return r;
  if (r.head.has_token("transfer-encoding", "chunked")) {
    r.chunked = true;
    chunked_decoder decoder;
    for (;;) {
      const auto st = decoder.feed(in_);
      if (st == chunked_decoder::status::complete) break;
      if (st == chunked_decoder::status::bad) {
        error_ = "bad chunked body after " + std::to_string(decoder.body.size()) + " bytes";
        return std::nullopt;
      }
      const got g = fill(until);
      if (g != got::data) {
        error_ = std::string(g == got::eof ? "closed" : "timed out") + " inside a chunked body after " +
                 std::to_string(decoder.body.size()) + " bytes";
        return std::nullopt;
      }
    }
    r.body = std::move(decoder.body);
    r.trailers = std::move(decoder.trailers);
    return r;
  }
  if (const auto cl = r.head.get("content-length")) {
    std::size_t n = 0;
    try {
      n = std::stoull(*cl);
    } catch (const std::exception&) {
      error_ = "Content-Length not a number: " + printable(*cl);
      return std::nullopt;
    }
    if (!read_at_least(n, std::chrono::duration_cast<ms>(until - clock::now()))) {
      error_ = "body: " + error_;
      return std::nullopt;
    }
    r.body = in_.substr(0, n);
    in_.erase(0, n);
    return r;
  }
  r.close_delimited = true;
  for (;;) {
    const got g = fill(until);
    if (g == got::eof) break;
    if (g == got::timeout) {
      error_ =
          "close-delimited body did not end within the deadline (" + std::to_string(in_.size()) + " bytes)";
      return std::nullopt;
    }
  }
  r.body = std::move(in_);
  in_.clear();
  return r;
}

std::optional<http_response> raw_client::read_final_response(ms deadline, bool head_request,
                                                             std::vector<http_response>* interim) {
  const auto until = clock::now() + deadline;
  for (int i = 0; i < 16; ++i) {
    auto r = read_response(std::chrono::duration_cast<ms>(until - clock::now()), head_request);
    if (!r || r->status / 100 != 1) return r;
    if (interim) interim->push_back(std::move(*r));
  }
  error_ = "more than 16 interim responses";
  return std::nullopt;
}

bool raw_client::wait_closed(ms deadline) {
  const auto until = clock::now() + deadline;
  for (;;) {
    const got g = fill(until);
    if (g == got::eof) return true;
    if (g == got::timeout) return false;
  }
}

}  // namespace cproxy::http_test
