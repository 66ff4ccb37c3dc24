// Implementation of route_feed_http.hpp: a blocking client made of non-blocking sockets and poll(), so
// that every wait has the request's deadline and the cancel descriptor in it.
#include "route_feed_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>

namespace cproxy::control::hub_http {
namespace {

using clock = std::chrono::steady_clock;

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}
bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// What stopped a wait, or none.
enum class wait_end { ready, timed_out, cancelled, failed };

// Waits for `events` on `fd` (or only for the deadline and the cancel descriptor when fd is -1).
wait_end wait_for(int fd, short events, clock::time_point deadline, int cancel_fd) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) return wait_end::timed_out;
    pollfd fds[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 60'000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return wait_end::failed;
    if (fds[1].revents) return wait_end::cancelled;
    if (fds[0].revents) return wait_end::ready;
  }
}

bool cancelled_now(int cancel_fd) {
  pollfd p{cancel_fd, POLLIN, 0};
  return cancel_fd >= 0 && ::poll(&p, 1, 0) > 0;
}

// Name lookups run in glibc's getaddrinfo_a() helper threads, so the wait for them can be cut short. One
// that cannot be cancelled in time (EAI_NOTCANCELED: the resolver is inside a blocking call) is left
// here and freed by a later lookup once it finishes; its memory must stay valid until then, exit
// included: the list is never destroyed, so no static destructor frees what a resolver thread still
// writes to.
struct lookup {
  std::string host, service;
  addrinfo hints{};
  gaicb cb{};
};
std::mutex& abandoned_mutex = *new std::mutex;
std::list<std::unique_ptr<lookup>>& abandoned = *new std::list<std::unique_ptr<lookup>>;

void free_lookup(std::unique_ptr<lookup> l) {
  if (l->cb.ar_result) ::freeaddrinfo(l->cb.ar_result);
}

void reap_abandoned() {
  std::lock_guard lock(abandoned_mutex);
  for (auto it = abandoned.begin(); it != abandoned.end();) {
    if (::gai_error(&(*it)->cb) == EAI_INPROGRESS) {
      ++it;
    } else {
      free_lookup(std::move(*it));
      it = abandoned.erase(it);
    }
  }
}

struct addresses {
  std::vector<sockaddr_storage> list;
  std::vector<socklen_t> lengths;
};

// Resolves `host`; "" with the addresses, else the problem.
std::string resolve(const std::string& host, std::uint16_t port, clock::time_point deadline, int cancel_fd,
                    addresses& out, bool& cancelled) {
  sockaddr_storage ss{};
  if (is_ipv4(host)) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    out.list.push_back(ss);
    out.lengths.push_back(sizeof(sockaddr_in));
    return {};
  }
  if (is_ipv6(host)) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    ::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    out.list.push_back(ss);
    out.lengths.push_back(sizeof(sockaddr_in6));
    return {};
  }

  reap_abandoned();
  auto l = std::make_unique<lookup>();
  l->host = host;
  l->service = std::to_string(port);
  l->hints.ai_family = AF_UNSPEC;
  l->hints.ai_socktype = SOCK_STREAM;
  l->hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  l->cb.ar_name = l->host.c_str();
  l->cb.ar_service = l->service.c_str();
  l->cb.ar_request = &l->hints;
  gaicb* batch[1] = {&l->cb};
  if (const int rc = ::getaddrinfo_a(GAI_NOWAIT, batch, 1, nullptr); rc != 0)
    return "cannot look up " + host + ": " + ::gai_strerror(rc);

  int rc = EAI_INPROGRESS;
  for (;;) {
    rc = ::gai_error(&l->cb);
    if (rc != EAI_INPROGRESS) break;
    const bool cancel = cancelled_now(cancel_fd);
    if (cancel || clock::now() >= deadline) {
      rc = ::gai_cancel(&l->cb);
      if (rc != EAI_ALLDONE) {
        if (rc == EAI_NOTCANCELED) {
          std::lock_guard lock(abandoned_mutex);
          abandoned.push_back(std::move(l));
        }
        cancelled = cancel;
        return cancel ? "cancelled" : "timed out looking up " + host;
      }
      rc = ::gai_error(&l->cb);
      break;
    }
    const gaicb* wait_list[1] = {&l->cb};
    const timespec slice{0, 20'000'000};  // the cancel descriptor is looked at between slices
    ::gai_suspend(wait_list, 1, &slice);
  }
  if (rc != 0) {
    const std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    free_lookup(std::move(l));
    return "cannot look up " + host + ": " + why;
  }
  for (const addrinfo* ai = l->cb.ar_result; ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage one{};
    std::memcpy(&one, ai->ai_addr, ai->ai_addrlen);
    out.list.push_back(one);
    out.lengths.push_back(ai->ai_addrlen);
  }
  free_lookup(std::move(l));
  if (out.list.empty()) return "cannot look up " + host + ": no addresses";
  return {};
}

std::string wait_problem(wait_end e, std::string_view doing, std::chrono::milliseconds timeout) {
  switch (e) {
    case wait_end::timed_out:
      return "no answer within " + std::to_string(timeout.count()) + " ms (" + std::string(doing) + ")";
    case wait_end::cancelled:
      return "cancelled";
    default:
      return std::string(doing) + ": poll failed: " + std::strerror(errno);
  }
}

// OpenSSL writes to its socket with write(), which raises SIGPIPE when the peer has gone; send() with
// MSG_NOSIGNAL is not an option through its socket BIO. SIGPIPE from write() is sent to the writing
// thread, so blocking it here for the length of a request, then taking a pending one, keeps it from
// killing a process that has not ignored it (the proxy has; tests may not).
class sigpipe_blocked {
 public:
  sigpipe_blocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~sigpipe_blocked() {
    if (sigismember(&old_, SIGPIPE)) return;  // blocked before us: whoever blocked it handles it
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE)) {
      const timespec now{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &now) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocked(const sigpipe_blocked&) = delete;
  sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

 private:
  sigset_t pipe_, old_;
};

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

struct ssl_ctx_free {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct ssl_free {
  void operator()(SSL* s) const { SSL_free(s); }
};

// The OpenSSL error queue's first entry (or `fallback`), and the queue cleared for the next call.
std::string ssl_problem(const char* fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// One connection, plain or TLS, with deadline-bounded whole writes and partial reads.
class connection {
 public:
  connection(int fd, SSL* ssl, clock::time_point deadline, int cancel_fd, std::chrono::milliseconds timeout)
      : fd_(fd), ssl_(ssl), deadline_(deadline), cancel_fd_(cancel_fd), timeout_(timeout) {}

  std::string handshake() {
    for (;;) {
      ERR_clear_error();
      const int r = SSL_connect(ssl_);
      if (r == 1) return {};
      const int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        const wait_end w = wait_for(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_, cancel_fd_);
        if (w != wait_end::ready) return wait_problem(w, "TLS handshake", timeout_);
        continue;
      }
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK)
        return std::string("TLS handshake failed: certificate not trusted: ") +
               X509_verify_cert_error_string(verify);
      return "TLS handshake failed: " + ssl_problem(e == SSL_ERROR_SYSCALL ? "connection closed" : "error");
    }
  }

  std::string write_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n;
      short want = POLLOUT;
      if (ssl_) {
        ERR_clear_error();
        const int r = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        if (r > 0) {
          n = r;
        } else {
          const int e = SSL_get_error(ssl_, r);
          if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return "sending the request: " + ssl_problem("connection closed");
          want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
          n = -1;
        }
      } else {
        n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
          return std::string("sending the request: ") + std::strerror(errno);
      }
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      const wait_end w = wait_for(fd_, want, deadline_, cancel_fd_);
      if (w != wait_end::ready) return wait_problem(w, "sending the request", timeout_);
    }
    return {};
  }

  // > 0 bytes, 0 at the end of the stream, < 0 with `error` set.
  ssize_t read_some(char* buf, std::size_t size, std::string& error) {
    for (;;) {
      short want = POLLIN;
      if (ssl_) {
        ERR_clear_error();
        const int r = SSL_read(ssl_, buf, static_cast<int>(size));
        if (r > 0) return r;
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;  // close_notify
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          // A close without close_notify is reported here too (OpenSSL 3 "unexpected eof"): it may be a
          // truncation, so it never ends a close-delimited body.
          error = "reading the response: " + ssl_problem("connection closed");
          return -1;
        }
        want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      } else {
        const ssize_t n = ::recv(fd_, buf, size, 0);
        if (n >= 0) return n;
        if (errno != EAGAIN && errno != EINTR) {
          error = std::string("reading the response: ") + std::strerror(errno);
          return -1;
        }
      }
      const wait_end w = wait_for(fd_, want, deadline_, cancel_fd_);
      if (w != wait_end::ready) {
        error = wait_problem(w, "reading the response", timeout_);
        return -1;
      }
    }
  }

 private:
  int fd_;
  SSL* ssl_;
  clock::time_point deadline_;
  int cancel_fd_;
  std::chrono::milliseconds timeout_;
};

// Connects to one of `to` in order; the socket, or -1 with `error`.
int dial(const addresses& to, const url& where, clock::time_point deadline, int cancel_fd,
         std::chrono::milliseconds timeout, std::string& error, bool& cancelled) {
  for (std::size_t i = 0; i < to.list.size(); ++i) {
    const auto* sa = reinterpret_cast<const sockaddr*>(&to.list[i]);
    fd_guard s{::socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int err = 0;
    if (::connect(s.fd, sa, to.lengths[i]) != 0) {
      if (errno != EINPROGRESS) {
        err = errno;
      } else {
        const wait_end w = wait_for(s.fd, POLLOUT, deadline, cancel_fd);
        if (w != wait_end::ready) {
          cancelled = w == wait_end::cancelled;
          error = wait_problem(w, "connecting to " + where.authority, timeout);
          return -1;
        }
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    if (err == 0) {
      const int fd = s.fd;
      s.fd = -1;
      return fd;
    }
    error = "cannot connect to " + where.authority + ": " + std::strerror(err);
  }
  return -1;
}

}  // namespace

std::optional<url> parse_url(std::string_view text, std::string& error) {
  url u;
  std::string low(text.substr(0, 8));
  std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view rest;
  if (low.starts_with("https://")) {
    u.tls = true;
    rest = text.substr(8);
  } else if (low.starts_with("http://")) {
    rest = text.substr(7);
  } else {
    error = "the hub URL must start with http:// or https://";
    return std::nullopt;
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    error = "the hub URL must not have a query or a fragment";
    return std::nullopt;
  }
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    error = "the hub URL must not carry a user name or password";
    return std::nullopt;
  }
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with("[")) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "the hub URL has an unclosed '['";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    if (!is_ipv6(u.host)) {
      error = "the hub URL has an invalid IPv6 address";
      return std::nullopt;
    }
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) {
      error = "the hub URL has text after its IPv6 address";
      return std::nullopt;
    }
    has_port = !after.empty();
    if (has_port) port_text = after.substr(1);
  } else {
    const std::size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port_text = authority.substr(colon + 1);
    if (u.host.empty() || !std::all_of(u.host.begin(), u.host.end(), is_name_char)) {
      error = "the hub URL needs a host name or address";
      return std::nullopt;
    }
  }
  u.port = u.tls ? 443 : 80;
  if (has_port) {
    const bool digits =
        !port_text.empty() && port_text.size() <= 5 &&
        std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const unsigned long n = digits ? std::stoul(std::string(port_text)) : 0;
    if (n < 1 || n > 65535) {
      error = "the hub URL has an invalid port";
      return std::nullopt;
    }
    u.port = static_cast<std::uint16_t>(n);
  }
  u.authority = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  if (has_port) u.authority += ":" + std::to_string(u.port);
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      error = "the hub URL's path has a space or a control character";
      return std::nullopt;
    }
  }
  while (path.ends_with("/")) path.remove_suffix(1);
  u.path = std::string(path);
  return u;
}

response_reader::status response_reader::fail(std::string why) {
  phase_ = phase::failed;
  error_ = std::move(why);
  return status::invalid;
}

response_reader::status response_reader::feed(std::string_view bytes) {
  switch (phase_) {
    case phase::done:
      return status::done;  // after the end: ignored (the request said Connection: close)
    case phase::failed:
      return status::invalid;
    case phase::body:
      return take_body(bytes);
    case phase::head:
      break;
  }
  head_bytes_.append(bytes);
  const http::parse_result r = http::parse_response(head_bytes_, "GET", head_);
  switch (r.status) {
    case http::parse_status::need_more:
      if (head_bytes_.size() > http::header_limit) return fail("the response head is over 64 KiB");
      return status::more;
    case http::parse_status::too_large:
      return fail("the response head is over 64 KiB");
    case http::parse_status::invalid:
      return fail("malformed response head: " + r.error);
    case http::parse_status::complete:
      break;
  }
  if (head_.status < 200) return fail("unexpected interim response " + std::to_string(head_.status));
  if (head_.body == http::framing::until_close &&
      std::any_of(head_.fields.begin(), head_.fields.end(),
                  [](const http::field& f) { return http::iequals(f.name, "Transfer-Encoding"); }))
    return fail("unsupported Transfer-Encoding (only chunked)");
  if (head_.body == http::framing::length && head_.content_length > max_body)
    return fail("the response body is over 1 MiB");
  const std::string rest = head_bytes_.substr(r.consumed);
  head_bytes_.clear();
  if (head_.body == http::framing::none) {
    phase_ = phase::done;
    return status::done;
  }
  phase_ = phase::body;
  return take_body(rest);
}

response_reader::status response_reader::take_body(std::string_view bytes) {
  switch (head_.body) {
    case http::framing::length: {
      const std::size_t want = static_cast<std::size_t>(head_.content_length) - body_.size();
      body_.append(bytes.substr(0, want));
      if (body_.size() == head_.content_length) phase_ = phase::done;
      break;
    }
    case http::framing::chunked: {
      std::size_t used = 0;
      const http::chunked_scanner::status s = chunks_.feed(bytes, used, &body_);
      if (s == http::chunked_scanner::status::invalid) return fail("malformed chunked body");
      if (body_.size() > max_body) return fail("the response body is over 1 MiB");
      if (s == http::chunked_scanner::status::done) phase_ = phase::done;
      break;
    }
    case http::framing::until_close:
      body_.append(bytes);
      if (body_.size() > max_body) return fail("the response body is over 1 MiB");
      break;
    case http::framing::none:
      phase_ = phase::done;
      break;
  }
  return phase_ == phase::done ? status::done : status::more;
}

response_reader::status response_reader::finish() {
  switch (phase_) {
    case phase::done:
      return status::done;
    case phase::failed:
      return status::invalid;
    case phase::head:
      return fail(head_bytes_.empty() ? "the connection closed without a response"
                                      : "the connection closed inside the response head");
    case phase::body:
      if (head_.body == http::framing::until_close) {
        phase_ = phase::done;
        return status::done;
      }
      return fail("the connection closed before the response body ended");
  }
  return status::invalid;
}

fetch_result get(const url& where, const std::string& target,
                 const std::vector<std::pair<std::string, std::string>>& headers,
                 std::chrono::milliseconds timeout, int cancel_fd) {
  fetch_result out;
  const auto deadline = clock::now() + timeout;

  addresses to;
  out.error = resolve(where.host, where.port, deadline, cancel_fd, to, out.cancelled);
  if (!out.error.empty()) return out;
  fd_guard sock{dial(to, where, deadline, cancel_fd, timeout, out.error, out.cancelled)};
  if (sock.fd < 0) return out;

  std::optional<sigpipe_blocked> no_sigpipe;
  std::unique_ptr<SSL_CTX, ssl_ctx_free> ctx;
  std::unique_ptr<SSL, ssl_free> ssl;
  if (where.tls) {
    no_sigpipe.emplace();
    // A context per request: reloads the system store, so a CA installed while the proxy runs counts.
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
      out.error = "TLS: " + ssl_problem("cannot make a context");
      return out;
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      out.error = "TLS: cannot load the system trust store: " + ssl_problem("error");
      return out;
    }
    ssl.reset(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), sock.fd) != 1) {
      out.error = "TLS: " + ssl_problem("cannot make a session");
      return out;
    }
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(ssl.get(), alpn, sizeof alpn);
    const bool numeric = is_ipv4(where.host) || is_ipv6(where.host);
    bool set = true;
    if (numeric) {
      set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), where.host.c_str()) == 1;
    } else {
      // SNI. SSL_set_tlsext_host_name() is a macro with a C cast (-Wold-style-cast): its expansion, spelled
      // out.
      const long sni = SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                const_cast<char*>(where.host.c_str()));
      set = sni == 1 && SSL_set1_host(ssl.get(), where.host.c_str()) == 1;
    }
    if (!set) {
      out.error = "TLS: " + ssl_problem("cannot set the name to verify");
      return out;
    }
  }

  connection conn(sock.fd, ssl.get(), deadline, cancel_fd, timeout);
  if (ssl) {
    out.error = conn.handshake();
    if (!out.error.empty()) {
      out.cancelled = out.error == "cancelled";
      return out;
    }
  }

  std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + where.authority + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "Connection: close\r\n\r\n";
  out.error = conn.write_all(request);
  if (!out.error.empty()) {
    out.cancelled = out.error == "cancelled";
    return out;
  }

  response_reader reader;
  char buf[16384];
  response_reader::status s = response_reader::status::more;
  while (s == response_reader::status::more) {
    std::string error;
    const ssize_t n = conn.read_some(buf, sizeof buf, error);
    if (n < 0) {
      out.error = error;
      out.cancelled = error == "cancelled";
      return out;
    }
    s = n == 0 ? reader.finish() : reader.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  if (s == response_reader::status::invalid) {
    out.error = reader.error();
    return out;
  }
  out.ok = true;
  out.status = reader.code();
  out.body = reader.body();
  return out;
}

}  // namespace cproxy::control::hub_http
