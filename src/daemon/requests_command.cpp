// `connect proxy requests`: the running proxy's request inspector on the terminal, read over HTTP(S)
// from its own /_connect/ API on loopback (product.md, Inspector: CLI).
#include "connect/daemon/requests_command.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

#include "connect/config/config_file.hpp"
#include "connect/daemon/port_owner.hpp"
#include "connect/daemon/state_file.hpp"
#include "connect/pki/cert_store.hpp"

namespace cproxy::control {
namespace {

namespace json = boost::json;

// SNI "localhost" (SSL_set_tlsext_host_name, without its C cast).
bool set_server_name(SSL* ssl) {
  static char name[] = "localhost";
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name) == 1;
}

// One connection to the proxy, plain or TLS. Over TLS the proxy's certificate must chain to the local
// CA of the home folder (or, for a --cert of the user's own, to a root the system trusts) and name
// localhost: the requests and their secrets are read only from the proxy this home made.
class channel {
 public:
  channel(const proxy_state& s, const std::string& ca_file) : tls_(s.tls) {
    const io::endpoint proxy = local_endpoint(s.bind, s.port);
    fd_ = ::socket(proxy.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd_, proxy.data(), proxy.size()) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    if (!tls_) return;
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (ctx_) {
      SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
      SSL_CTX_set_default_verify_paths(ctx_.get());
      // Without a local CA (a proxy started with --cert only), the system's roots alone decide.
      if (SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1) ERR_clear_error();
      ssl_.reset(SSL_new(ctx_.get()));
    }
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_) != 1 || !set_server_name(ssl_.get()) ||
        SSL_set1_host(ssl_.get(), "localhost") != 1) {
      close();
      return;
    }
    if (SSL_connect(ssl_.get()) != 1) {
      const long verdict = SSL_get_verify_result(ssl_.get());
      if (verdict != X509_V_OK) untrusted_ = X509_verify_cert_error_string(verdict);
      ERR_clear_error();
      close();
    }
  }
  ~channel() { close(); }
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  bool ok() const { return fd_ >= 0; }
  // Why the proxy's certificate was refused; empty when it was not.
  const std::string& untrusted() const { return untrusted_; }
  bool send(const std::string& bytes) {
    if (tls_) return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) > 0;
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Some bytes, appended; false at the end or on an error. `wait` seconds at most (0: no limit).
  bool receive(std::string* into, int wait) {
    timeval tv{wait, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16384];
    const long n = tls_ ? SSL_read(ssl_.get(), buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    into->append(buf, static_cast<std::size_t>(n));
    return true;
  }

 private:
  void close() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  struct ssl_free {
    void operator()(SSL* s) const { SSL_free(s); }
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  bool tls_;
  int fd_ = -1;
  std::string untrusted_;
  std::unique_ptr<SSL_CTX, ssl_free> ctx_;
  std::unique_ptr<SSL, ssl_free> ssl_;
};

std::string get_request(const std::string& target, std::uint16_t port) {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost:" + std::to_string(port) +
         "\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
}

// The local CA the proxy's certificate must chain to.
std::string local_ca_file() {
  return ca_cert_path(home_folder());
}

// The CA file as the contract prints paths in the home folder: ~/.privateconnect when it is the default.
std::string shown_ca_file() {
  const std::string home = home_folder();
  const char* custom = std::getenv("PRIVATECONNECT_HOME");
  const char* user_home = std::getenv("HOME");
  if ((!custom || !*custom) && user_home && home == std::string(user_home) + "/.privateconnect")
    return "~/.privateconnect/certs/ca.crt";
  return ca_cert_path(home);
}

// The body of a whole response to a GET (Connection: close); nullopt unless it answered 200.
std::optional<std::string> fetch(const proxy_state& s, const std::string& target) {
  channel c(s, local_ca_file());
  if (!c.ok() || !c.send(get_request(target, s.port))) return std::nullopt;
  std::string response;
  for (int reads = 0; reads < 1'000'000 && c.receive(&response, 10); ++reads) {
  }
  const std::size_t body = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.1 200") || body == std::string::npos) return std::nullopt;
  return response.substr(body + 4);
}

std::string text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

// One request as a line: time (UTC, of day), status, method, URL, duration.
std::string line_of(const json::object& r, const proxy_state& s) {
  std::string time = text(r.at("time"));
  const std::size_t t = time.find('T');
  if (t != std::string::npos) time = time.substr(t + 1, 12);
  const std::int64_t status = r.at("status").to_number<std::int64_t>();
  const std::string path = text(r.at("path"));
  const std::string host = text(r.at("host"));
  std::string url =
      path.find("://") != std::string::npos ? path : (s.tls ? "https://" : "http://") + host + path;
  if (text(r.at("method")) == "CONNECT") url = host;
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.1fms", r.at("durationMs").to_number<double>());
  return time + " " + (status == 0 ? std::string("---") : std::to_string(status)) + " " +
         text(r.at("method")) + " " + url + " " + duration;
}

int follow(const proxy_state& s, const requests_args& args) {
  channel c(s, local_ca_file());
  if (!c.ok() || !c.send(get_request("/_connect/events", s.port))) {
    std::cerr << "[x] Cannot reach the proxy on port " << s.port << "\n";
    return 1;
  }
  std::string in;
  bool head_done = false;
  while (c.receive(&in, 0)) {
    if (!head_done) {
      const std::size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      if (!in.starts_with("HTTP/1.1 200")) {
        std::cerr << "[x] The proxy refused the event stream\n";
        return 1;
      }
      in.erase(0, end + 4);
      head_done = true;
    }
    for (std::size_t nl = in.find('\n'); nl != std::string::npos; nl = in.find('\n')) {
      const std::string line = in.substr(0, nl);
      in.erase(0, nl + 1);
      if (!line.starts_with("data: ")) continue;
      boost::system::error_code ec;
      const json::value v = json::parse(line.substr(6), ec);
      if (ec || !v.is_object()) continue;
      const json::object& r = v.as_object();
      if (!args.route.empty() && text(r.at("route")) != args.route) continue;
      std::cout << (args.json ? line.substr(6) : line_of(r, s)) << std::endl;
    }
  }
  return 0;
}

}  // namespace

int run_requests(const requests_args& args) {
  const std::optional<proxy_state> running = running_proxy(home_folder());
  if (!running) {
    std::cerr << "[!] Proxy is not running.\n";
    return 1;
  }
  if (running->tls) {
    const channel probe(*running, local_ca_file());
    if (!probe.untrusted().empty()) {
      std::cerr << "[x] The proxy's certificate is not from the local CA (" << shown_ca_file()
                << "): " << probe.untrusted() << "\n";
      return 1;
    }
  }
  if (!args.har.empty()) {
    const std::optional<std::string> har = fetch(*running, "/_connect/requests.har");
    if (!har) {
      std::cerr << "[x] The proxy did not answer /_connect/requests.har\n";
      return 1;
    }
    std::ofstream out(args.har, std::ios::binary | std::ios::trunc);
    out << *har;
    if (!out.flush()) {
      std::cerr << "[x] Cannot write " << args.har << "\n";
      return 1;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(*har, ec);
    const std::size_t n = ec ? 0 : v.at("log").at("entries").as_array().size();
    std::cout << "[ok] Wrote " << n << " request(s) to " << args.har << "\n";
    return 0;
  }
  std::string target = "/_connect/requests";
  std::string sep = "?";
  if (!args.route.empty()) {
    target += sep + "route=" + args.route;
    sep = "&";
  }
  if (args.limit) target += sep + "limit=" + std::to_string(*args.limit);
  const std::optional<std::string> body = fetch(*running, target);
  boost::system::error_code ec;
  const json::value v = body ? json::parse(*body, ec) : json::value();
  if (!body || ec || !v.is_object()) {
    std::cerr << "[x] The proxy did not answer /_connect/requests (is its inspector on?)\n";
    return 1;
  }
  if (args.json) {
    std::cout << *body << "\n";
  } else {
    // Oldest first, as a log reads (and --follow goes on below).
    const json::array& list = v.at("requests").as_array();
    for (auto it = list.rbegin(); it != list.rend(); ++it)
      std::cout << line_of(it->as_object(), *running) << "\n";
  }
  std::cout.flush();
  if (args.follow) return follow(*running, args);
  return 0;
}

}  // namespace cproxy::control
