// Unit tests for connect/feed/route_feed.hpp and its private pieces: the hub answer, the change line,
// the hub URL and response framing (byte arrays); then the client and the running feed against
// scripted loopback servers (plain and TLS) and files in a mkdtemp home, with short periods.
#include "connect/feed/route_feed.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "connect/io/block_on.hpp"
#include "connect/io/select_backend.hpp"
#include "feed/hub_client.hpp"
#include "feed/route_feed_http.hpp"
#include "feed/route_feed_watch.hpp"
#include "support/posix_server.hpp"
#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

using namespace std::chrono_literals;
using cproxy::control::describe_route_changes;
using cproxy::control::parse_hub_services;
using cproxy::control::route_feed;
using cproxy::control::route_feed_config;
using cproxy::test::temp_dir;
namespace route = cproxy::route;
namespace hub_http = cproxy::control::hub_http;
using reader = hub_http::response_reader;

route::route r(std::string name, std::uint16_t port, route::source from, std::string host = "localhost") {
  return route::route{std::move(name), std::move(host), port, from};
}

// ---- a scripted loopback server ----

struct ssl_ctx_deleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_deleter>;

// Serves connections one at a time on its own thread: reads a request head and answers with what
// `respond` returns for it; "" closes without answering, `hang` holds the connection until the end.
class fake_server {
 public:
  static inline const std::string hang = "<hang>";
  using responder = std::function<std::string(const std::string& request)>;

  explicit fake_server(responder respond, SSL_CTX* tls = nullptr) : respond_(std::move(respond)), tls_(tls) {
    const cproxy::test::posix_listener l = cproxy::test::posix_listen_loopback();
    listen_fd_ = l.fd;
    port_ = l.port;
    thread_ = std::thread([this] { run(); });
  }
  ~fake_server() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  fake_server(const fake_server&) = delete;
  fake_server& operator=(const fake_server&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  void set_responder(responder next) {
    std::lock_guard lock(mutex_);
    respond_ = std::move(next);
  }

 private:
  bool wait_readable(int fd) const {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  void run() {
    // SSL_write() and alerts use write(): a client that hung up must not kill the suite with SIGPIPE,
    // which goes to the writing thread.
    sigset_t sigpipe;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
    while (wait_readable(listen_fd_)) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      serve(fd);
      ::close(fd);
    }
  }
  void serve(int fd) {
    SSL* ssl = nullptr;
    if (tls_) {
      ssl = SSL_new(tls_);
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
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
      answer = respond_(request);
    }
    if (answer == hang) {
      while (!stop_) std::this_thread::sleep_for(10ms);
    } else if (!answer.empty()) {
      if (ssl) {
        SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
        SSL_shutdown(ssl);
      } else {
        ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      }
    }
    if (ssl) SSL_free(ssl);
  }

  responder respond_;
  SSL_CTX* tls_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

std::string ok_json(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A self-signed P-256 certificate for 127.0.0.1 (not for localhost), written as PEM to `cert_path`, and a
// server context serving it.
ctx_ptr self_signed_server(const std::string& cert_path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BOOST_TEST_REQUIRE(key != nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  const std::string cn = "route feed test";
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                                   std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  BOOST_TEST_REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  FILE* f = std::fopen(cert_path.c_str(), "w");
  BOOST_TEST_REQUIRE(f != nullptr);
  PEM_write_X509(f, cert);
  std::fclose(f);
  ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_use_certificate(ctx.get(), cert);
  SSL_CTX_use_PrivateKey(ctx.get(), key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}

// Sets an environment variable for the length of a case, then removes it.
struct env_set {
  std::string name;
  env_set(std::string n, const std::string& value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~env_set() { ::unsetenv(name.c_str()); }
};

// One request on a context of its own, as the poller makes it.
hub_http::fetch_result fetch(const hub_http::url& where, const std::string& target,
                             hub_http::header_list headers, std::chrono::milliseconds timeout) {
  const auto ctx = cproxy::io::make_context(cproxy::io::backend_kind::asio);
  return cproxy::io::block_on(*ctx, hub_http::get(ctx.get(), where, target, std::move(headers), timeout));
}

// ---- the running feed ----

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds deadline = 5s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// "name=upstream/source" for each route, in the table's order.
std::string shown(const cproxy::published<route::table>& out) {
  std::string s;
  // Held: the feed's thread may publish a new table, freeing this one, while the loop reads it.
  const std::shared_ptr<const route::table> table = out.load();
  for (const route::route& x : table->routes())
    s += (s.empty() ? "" : " ") + x.name + "=" + x.upstream_text() + "/" +
         std::string(route::to_string(x.from));
  return s;
}

route_feed_config quick_config(const std::string& home) {
  route_feed_config c;
  c.home = home;
  c.debounce = 20ms;
  c.poll_interval = 50ms;
  c.pid_interval = 100ms;
  c.hub_interval = 50ms;
  c.hub_timeout = 2s;
  return c;
}

std::string reach_file(const std::string& entries) {
  return R"({"version": 1, "routes": [)" + entries + "]}";
}

// Replaces `name` in `dir` the way careful tools do: a temp file renamed over it.
void replace_atomically(const temp_dir& dir, const std::string& name, const std::string& text) {
  const std::string tmp = dir.write(name + ".tmp", text);
  std::filesystem::rename(tmp, dir.path + "/" + name);
}

const char* const watch_kinds[] = {"inotify", "polling"};

}  // namespace

BOOST_AUTO_TEST_SUITE(route_feed_pure)

BOOST_AUTO_TEST_CASE(hub_services_with_a_tunnel_become_routes) {
  const auto out = parse_hub_services(R"([
    {"name": "API", "tunnelPort": 41001, "status": "online"},
    {"name": "db", "tunnelPort": null},
    {"name": "cache"},
    {"name": "web", "tunnelPort": 41002.0}])");
  BOOST_TEST(out.error == "");
  BOOST_TEST(out.warnings.empty());
  BOOST_TEST_REQUIRE(out.routes.size() == 2u);
  BOOST_TEST(out.routes[0].name == "api");
  BOOST_TEST(out.routes[0].upstream_text() == "127.0.0.1:41001");
  BOOST_TEST((out.routes[0].from == route::source::hub));
  BOOST_TEST(out.routes[1].name == "web");
  BOOST_TEST(out.routes[1].port == 41002);
}

BOOST_AUTO_TEST_CASE(bad_services_are_skipped_with_a_warning) {
  const auto out = parse_hub_services(R"([7, {"name": "bad name!", "tunnelPort": 1}, {"tunnelPort": 2},
    {"name": "big", "tunnelPort": 70000}, {"name": "ok", "tunnelPort": 3}])");
  BOOST_TEST(out.error == "");
  BOOST_TEST_REQUIRE(out.routes.size() == 1u);
  BOOST_TEST(out.routes[0].name == "ok");
  const std::vector<std::string> expected{
      "services[0] skipped: it must be an object, not 7",
      "services[1] (\"bad name!\") skipped: \"name\" must be a name such as \"api\", not \"bad name!\"",
      "services[2] skipped: \"name\" must be a name such as \"api\", not missing",
      "services[3] (\"big\") skipped: \"tunnelPort\" must be an integer from 1 to 65535, not 70000"};
  BOOST_TEST(out.warnings == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_unusable_answer_is_an_error) {
  BOOST_TEST(parse_hub_services("").error == "the answer is empty");
  BOOST_TEST(parse_hub_services(R"({"services": []})").error ==
             R"(the answer must be a JSON array of services, not {"services":[]})");
  BOOST_TEST(parse_hub_services("[{\"name\": ").error.starts_with("invalid JSON at line 1, column 11"));
  BOOST_TEST(parse_hub_services("[]").error == "");
}

BOOST_AUTO_TEST_CASE(change_line_names_added_changed_and_removed_in_name_order) {
  const route::table before({r("web", 5173, route::source::config), r("api", 8080, route::source::reach),
                             r("db", 5432, route::source::hub, "127.0.0.1"),
                             r("same", 1, route::source::config)});
  const route::table after({r("api", 8080, route::source::reach), r("cache", 6379, route::source::reach),
                            r("db", 6543, route::source::hub, "127.0.0.1"),
                            r("same", 1, route::source::config), r("zeta", 9, route::source::hub, "::1")});
  BOOST_TEST(describe_route_changes(before, after) ==
             "routes: +cache (127.0.0.1:6379, reach), ~db (127.0.0.1:6543, hub), -web, +zeta ([::1]:9, hub)");
  BOOST_TEST(describe_route_changes(after, after) == "");
  BOOST_TEST(describe_route_changes(route::table(), route::table({r("api", 8080, route::source::reach)})) ==
             "routes: +api (127.0.0.1:8080, reach)");
  // A change of source alone is a change: the status page shows it.
  BOOST_TEST(describe_route_changes(route::table({r("api", 8080, route::source::config)}),
                                    route::table({r("api", 8080, route::source::reach)})) ==
             "routes: ~api (127.0.0.1:8080, reach)");
}

BOOST_AUTO_TEST_CASE(hub_urls) {
  std::string error;
  auto u = hub_http::parse_url("https://hub.privateconnect.co", error);
  BOOST_TEST_REQUIRE(u.has_value());
  BOOST_TEST(u->tls);
  BOOST_TEST(u->host == "hub.privateconnect.co");
  BOOST_TEST(u->port == 443);
  BOOST_TEST(u->authority == "hub.privateconnect.co");
  BOOST_TEST(u->path == "");

  u = hub_http::parse_url("HTTP://127.0.0.1:8123/base/", error);
  BOOST_TEST_REQUIRE(u.has_value());
  BOOST_TEST(!u->tls);
  BOOST_TEST(u->port == 8123);
  BOOST_TEST(u->authority == "127.0.0.1:8123");
  BOOST_TEST(u->path == "/base");

  u = hub_http::parse_url("http://[::1]:81", error);
  BOOST_TEST_REQUIRE(u.has_value());
  BOOST_TEST(u->host == "::1");
  BOOST_TEST(u->authority == "[::1]:81");

  for (const char* bad :
       {"ftp://x", "http://", "http://user:pw@hub", "http://hub?x=1", "http://hub:0", "http://hub:65536",
        "http://hub:", "http://[::1", "http://[nope]", "http://hub/a b", "http://hub:12x"}) {
    error.clear();
    BOOST_TEST(!hub_http::parse_url(bad, error).has_value(), bad);
    BOOST_TEST(!error.empty(), bad);
  }
}

BOOST_AUTO_TEST_CASE(response_with_content_length_even_byte_by_byte) {
  const std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  reader whole;
  BOOST_TEST((whole.feed(bytes) == reader::status::done));
  BOOST_TEST(whole.code() == 200u);
  BOOST_TEST(whole.body() == "hello");

  reader slow;
  reader::status s = reader::status::more;
  for (char c : bytes) s = slow.feed(std::string_view(&c, 1));
  BOOST_TEST((s == reader::status::done));
  BOOST_TEST(slow.body() == "hello");
}

BOOST_AUTO_TEST_CASE(response_chunked_and_close_delimited) {
  reader chunked;
  BOOST_TEST((chunked.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n") ==
              reader::status::more));
  BOOST_TEST((chunked.feed("2\r\n2]\r\n0\r\n\r\n") == reader::status::done));
  BOOST_TEST(chunked.body() == "[1,2]");

  reader until_close;
  BOOST_TEST((until_close.feed("HTTP/1.0 200 OK\r\n\r\n[]") == reader::status::more));
  BOOST_TEST((until_close.finish() == reader::status::done));
  BOOST_TEST(until_close.body() == "[]");

  reader no_body;
  BOOST_TEST((no_body.feed("HTTP/1.1 204 No Content\r\n\r\n") == reader::status::done));
  BOOST_TEST(no_body.code() == 204u);
}

// An empty chunked body byte by byte: Beast 1.81 asserted when the last chunk, right after the head, came
// back with one byte more (fuzz_hub_answer); the reader waits for enough of the line instead.
BOOST_AUTO_TEST_CASE(an_empty_chunked_body_byte_by_byte) {
  const std::string bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  reader slow;
  reader::status s = reader::status::more;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s = slow.feed(std::string_view(&bytes[i], 1));
    BOOST_TEST((s == (i + 1 == bytes.size() ? reader::status::done : reader::status::more)), i);
  }
  BOOST_TEST(slow.body() == "");
  reader cut;
  BOOST_TEST((cut.feed(bytes.substr(0, bytes.size() - 1)) == reader::status::more));
  BOOST_TEST((cut.finish() == reader::status::invalid));
}

BOOST_AUTO_TEST_CASE(response_errors) {
  const auto error_of = [](std::initializer_list<std::string> parts, bool finish) {
    reader x;
    reader::status s = reader::status::more;
    for (const std::string& p : parts) s = x.feed(p);
    if (finish && s == reader::status::more) s = x.finish();
    BOOST_TEST((s == reader::status::invalid));
    return x.error();
  };
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"}, true) ==
             "the connection closed before the response body ended");
  BOOST_TEST(error_of({}, true) == "the connection closed without a response");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nContent-"}, true) ==
             "the connection closed inside the response head");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n"}, false) ==
             "the response body is over 1 MiB");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\n\r\n", std::string(hub_http::max_body + 1, 'x')}, false) ==
             "the response body is over 1 MiB");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n",
                       std::string(hub_http::max_body + 1, 'x')},
                      false) == "the response body is over 1 MiB");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"}, false) ==
             "unsupported Transfer-Encoding (only chunked)");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}, false) ==
             "malformed chunked body");
  BOOST_TEST(error_of({"HTTP/1.1 100 Continue\r\n\r\n"}, false) == "unexpected interim response 100");
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"}, false)
                 .starts_with("malformed response head: "));
  BOOST_TEST(error_of({"HTTP/1.1 200 OK\r\nX: " + std::string(70 * 1024, 'a')}, false) ==
             "the response head is over 64 KiB");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(route_feed_client)

BOOST_AUTO_TEST_CASE(plain_get_sends_the_headers_and_reads_a_chunked_answer) {
  fake_server hub([](const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n");
  });
  std::string error;
  const auto where = hub_http::parse_url(hub.url() + "/base", error);
  BOOST_TEST_REQUIRE(where.has_value());
  const auto r = fetch(*where, "/base/v1/services", {{"x-api-key", "k-123"}}, 5s);
  BOOST_TEST(!r.ec, r.detail);
  BOOST_TEST(r.status == 200u);
  BOOST_TEST(r.body == "[]");
  BOOST_TEST_REQUIRE(hub.requests().size() == 1u);
  const std::string req = hub.requests()[0];
  BOOST_TEST(req.starts_with(
                 "GET /base/v1/services HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(hub.port()) + "\r\n"),
             req);
  BOOST_TEST(req.find("\r\nx-api-key: k-123\r\n") != std::string::npos, req);
  BOOST_TEST(req.find("\r\nConnection: close\r\n") != std::string::npos, req);
}

// Cancelling is in hub_outage_test.cpp (failures_are_hub_error_codes).
BOOST_AUTO_TEST_CASE(refused_and_silent_requests_fail) {
  std::string error;
  std::uint16_t closed_port = 0;
  {
    fake_server gone([](const std::string&) { return std::string(); });
    closed_port = gone.port();
  }
  auto where = hub_http::parse_url("http://127.0.0.1:" + std::to_string(closed_port), error);
  auto r = fetch(*where, "/v1/services", {}, 5s);
  BOOST_TEST(r.ec);
  BOOST_TEST(r.detail.starts_with("cannot connect to 127.0.0.1:"), r.detail);

  fake_server silent([](const std::string&) { return fake_server::hang; });
  where = hub_http::parse_url(silent.url(), error);
  r = fetch(*where, "/v1/services", {}, 200ms);
  BOOST_TEST(r.ec);
  BOOST_TEST((r.ec != hub_http::hub_errc::cancelled));
  BOOST_TEST(r.detail == "no answer within 200 ms (reading the response)");
}

BOOST_AUTO_TEST_CASE(https_verifies_the_certificate_and_the_address) {
  temp_dir dir;
  const std::string cert = dir.path + "/hub.pem";
  ctx_ptr tls = self_signed_server(cert);
  fake_server hub([](const std::string&) { return ok_json("[]"); }, tls.get());
  std::string error;

  // Not in the trust store: refused in the handshake.
  auto where = hub_http::parse_url("https://127.0.0.1:" + std::to_string(hub.port()), error);
  auto r = fetch(*where, "/v1/services", {}, 5s);
  BOOST_TEST(r.ec);
  BOOST_TEST(r.detail.starts_with("TLS handshake failed: certificate not trusted: "), r.detail);

  // Trusted (OpenSSL's SSL_CERT_FILE names the store), and the address is in the certificate.
  env_set trust("SSL_CERT_FILE", cert);
  r = fetch(*where, "/v1/services", {}, 5s);
  BOOST_TEST(!r.ec, r.detail);
  BOOST_TEST(r.status == 200u);
  BOOST_TEST(r.body == "[]");

  // Trusted, but a name the certificate does not carry (looked up, so this is the name path): refused.
  where = hub_http::parse_url("https://localhost:" + std::to_string(hub.port()), error);
  r = fetch(*where, "/v1/services", {}, 5s);
  BOOST_TEST(r.ec);
  BOOST_TEST(r.detail.starts_with("TLS handshake failed: certificate not trusted: "), r.detail);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(route_feed_running)

BOOST_DATA_TEST_CASE(file_changes_apply_and_a_bad_file_keeps_the_last_routes,
                     boost::unit_test::data::make(watch_kinds), kind) {
  temp_dir home;
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config = quick_config(home.path);
  config.watch = std::string(kind) == "polling" ? route_feed_config::watch_kind::polling
                                                : route_feed_config::watch_kind::automatic;
  route_feed feed(config, out);
  feed.start();

  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8080})"));
  BOOST_TEST(eventually([&] { return shown(out) == "api=127.0.0.1:8080/reach"; }), shown(out));

  replace_atomically(home, "active-routes.json", reach_file(R"({"serviceName": "web", "localPort": 5173})"));
  BOOST_TEST(eventually([&] { return shown(out) == "web=127.0.0.1:5173/reach"; }), shown(out));

  home.write("active-routes.json", R"({"version": 1, "routes": [{"serviceName": )");
  std::this_thread::sleep_for(300ms);  // several debounce and polling periods: time to (wrongly) drop it
  BOOST_TEST(shown(out) == "web=127.0.0.1:5173/reach");

  std::filesystem::remove(home.path + "/active-routes.json");
  BOOST_TEST(eventually([&] { return shown(out).empty(); }), shown(out));

  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8081})"));
  BOOST_TEST(eventually([&] { return shown(out) == "api=127.0.0.1:8081/reach"; }), shown(out));
  feed.stop();
}

// The whole home folder removed and made again (inotify's watch goes with the folder; it is re-armed).
BOOST_DATA_TEST_CASE(a_home_folder_removed_and_made_again_is_watched_again,
                     boost::unit_test::data::make(watch_kinds), kind) {
  temp_dir parent;
  const std::string home = parent.path + "/home";
  std::filesystem::create_directory(home);
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config = quick_config(home);
  config.watch = std::string(kind) == "polling" ? route_feed_config::watch_kind::polling
                                                : route_feed_config::watch_kind::automatic;
  route_feed feed(config, out);
  feed.start();
  const auto write = [&](const std::string& text) { std::ofstream(home + "/active-routes.json") << text; };

  write(reach_file(R"({"serviceName": "api", "localPort": 8080})"));
  BOOST_TEST(eventually([&] { return shown(out) == "api=127.0.0.1:8080/reach"; }), shown(out));
  std::filesystem::remove_all(home);
  BOOST_TEST(eventually([&] { return shown(out).empty(); }), shown(out));
  std::filesystem::create_directory(home);
  write(reach_file(R"({"serviceName": "web", "localPort": 5173})"));
  BOOST_TEST(eventually([&] { return shown(out) == "web=127.0.0.1:5173/reach"; }), shown(out));
}

// Both ways of noticing a process end: its pidfd, and kill(pid, 0) checks where pidfds are missing.
BOOST_DATA_TEST_CASE(pid_watch_sees_a_process_end, boost::unit_test::data::make({true, false}), use_pidfds) {
  namespace feed_watch = cproxy::control::feed_watch;
  feed_watch::pid_watch pids(20ms, use_pidfds);
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  BOOST_TEST_REQUIRE(child > 0);
  BOOST_TEST(pids.alive(child));
  pids.track({child}, {child});
  BOOST_TEST(pids.check({}) == false);
  if (!use_pidfds) BOOST_TEST(pids.fds().empty());
  const auto ready = [&] {
    std::vector<int> out;
    for (int fd : pids.fds()) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) out.push_back(fd);
    }
    return out;
  };

  const bool by_pidfd = !pids.fds().empty();  // false too where pidfd_open() is missing
  ::kill(child, SIGKILL);
  int status = 0;
  if (by_pidfd) {
    // A zombie (not reaped yet) still answers kill(pid, 0), but its pidfd has said it ended.
    BOOST_TEST(eventually([&] { return pids.check(ready()); }));
    BOOST_TEST(!pids.alive(child));
    BOOST_TEST(pids.fds().empty());
    pids.track({child}, {});  // the file still names it: still ended
    BOOST_TEST(!pids.alive(child));
    pids.track({}, {});  // no longer named: forgotten, and the zombie answers again
    BOOST_TEST(pids.alive(child));
    ::waitpid(child, &status, 0);
  } else {
    ::waitpid(child, &status, 0);
    BOOST_TEST(eventually([&] { return pids.check({}); }));
    BOOST_TEST(!pids.alive(child));
  }
  BOOST_TEST((pids.next_check() == std::chrono::milliseconds::max()));
}

BOOST_AUTO_TEST_CASE(an_entry_drops_out_when_its_process_ends) {
  temp_dir home;
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed feed(quick_config(home.path), out);
  feed.start();

  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  BOOST_TEST_REQUIRE(child > 0);
  home.write("active-routes.json",
             reach_file(R"({"serviceName": "api", "localPort": 8080, "pid": )" + std::to_string(child) +
                        R"(}, {"serviceName": "static", "localPort": 9000, "pid": 0})"));
  BOOST_TEST(eventually([&] { return shown(out) == "api=127.0.0.1:8080/reach static=127.0.0.1:9000/reach"; }),
             shown(out));

  // Not reaped yet: a zombie still answers kill(pid, 0), but its pidfd says it ended. Where pidfds are
  // missing, the entry goes once the zombie is reaped below.
  ::kill(child, SIGKILL);
  eventually([&] { return shown(out) == "static=127.0.0.1:9000/reach"; }, 2s);
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_TEST(eventually([&] { return shown(out) == "static=127.0.0.1:9000/reach"; }), shown(out));
}

BOOST_AUTO_TEST_CASE(hub_routes_rank_below_config_and_file_and_survive_hub_errors) {
  temp_dir home;
  fake_server hub([](const std::string& request) {
    if (request.find("\r\nx-api-key: secret\r\n") == std::string::npos)
      return std::string("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    return ok_json(R"([{"name": "web", "tunnelPort": 7001}, {"name": "db", "tunnelPort": 7002},
                       {"name": "off", "tunnelPort": null}])");
  });
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config = quick_config(home.path);
  config.hub_url = hub.url() + "/";
  config.api_key = "secret";
  config.config_routes = {r("web", 5173, route::source::config)};
  home.write("active-routes.json", reach_file(R"({"serviceName": "db", "localPort": 9000})"));
  route_feed feed(config, out);
  feed.start();

  BOOST_TEST_REQUIRE(eventually([&] { return hub.requests().size() >= 2; }));  // the first answer is in
  BOOST_TEST(hub.requests().at(0).starts_with("GET /v1/services HTTP/1.1\r\n"));
  BOOST_TEST(shown(out) == "db=127.0.0.1:9000/reach web=127.0.0.1:5173/config");

  std::filesystem::remove(home.path + "/active-routes.json");
  BOOST_TEST(eventually([&] { return shown(out) == "db=127.0.0.1:7002/hub web=127.0.0.1:5173/config"; }),
             shown(out));

  // Errors of every kind keep the hub routes.
  const std::vector<std::string> failures{"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", ok_json("{}"), "",
                                          ok_json("[{\"name\":")};
  for (const std::string& answer : failures) {
    hub.set_responder([answer](const std::string&) { return answer; });
    const std::size_t seen = hub.requests().size();
    BOOST_TEST(eventually([&] { return hub.requests().size() >= seen + 2; }));
    BOOST_TEST(shown(out) == "db=127.0.0.1:7002/hub web=127.0.0.1:5173/config");
  }

  // Recovery applies the new answer.
  hub.set_responder([](const std::string&) { return ok_json(R"([{"name": "cache", "tunnelPort": 7003}])"); });
  BOOST_TEST(eventually([&] { return shown(out) == "cache=127.0.0.1:7003/hub web=127.0.0.1:5173/config"; }),
             shown(out));
}

BOOST_AUTO_TEST_CASE(no_api_key_no_request) {
  temp_dir home;
  fake_server hub([](const std::string&) { return ok_json(R"([{"name": "db", "tunnelPort": 7002}])"); });
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config = quick_config(home.path);
  config.hub_url = hub.url();
  route_feed feed(config, out);
  feed.start();
  std::this_thread::sleep_for(300ms);  // six hub periods
  BOOST_TEST(hub.requests().empty());
  BOOST_TEST(shown(out) == "");
}

// A hub that accepts and never answers, with no timeout to speak of: stop() still ends the request. The
// decorator fails the case if it hangs.
BOOST_AUTO_TEST_CASE(stop_cuts_a_hanging_hub_request_short, *boost::unit_test::timeout(30)) {
  temp_dir home;
  fake_server hub([](const std::string&) { return fake_server::hang; });
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config = quick_config(home.path);
  config.hub_url = hub.url();
  config.api_key = "k";
  config.hub_timeout = 1h;
  route_feed feed(config, out);
  feed.start();
  BOOST_TEST(eventually([&] { return !hub.requests().empty(); }));
  feed.stop();
}

BOOST_AUTO_TEST_CASE(starting_publishes_what_changed_since_the_initial_table) {
  temp_dir home;
  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8080})"));
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed feed(quick_config(home.path), out);
  feed.start();  // reads the file before returning
  BOOST_TEST(shown(out) == "api=127.0.0.1:8080/reach");
}

BOOST_AUTO_TEST_SUITE_END()
