// The hub client against a fake hub over HTTP and HTTPS (its own CA, made here with tls::make_ca and
// trusted through SSL_CERT_FILE): a hub that hangs, answers late, redirects, answers 10 MB or invalid
// JSON, shows a certificate for another name or an expired one, or refuses. Each case runs a route_feed
// on each io backend and checks the whole story: the last good routes stay, the outage is logged once
// (the log file read back), the hub's recovery applies its new answer, and the apiKey is in no line.
#include <openssl/ssl.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include "connect/core/log.hpp"
#include "connect/core/published.hpp"
#include "connect/feed/route_feed.hpp"
#include "connect/io/block_on.hpp"
#include "connect/io/select_backend.hpp"
#include "connect/tls/certificate.hpp"
#include "fake_hub.hpp"
#include "feed/hub_client.hpp"
#include "support/backends.hpp"
#include "support/temp_dir.hpp"
#include "support/unit_test.hpp"

namespace {

using namespace std::chrono_literals;
using cproxy::control::route_feed;
using cproxy::control::route_feed_config;
using cproxy::test::fake_hub;
using cproxy::test::temp_dir;
namespace route = cproxy::route;
namespace tls = cproxy::tls;
namespace hub_http = cproxy::control::hub_http;

const std::string api_key = "k-7f3a9c-never-logged";

std::string ok_json(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}
const std::string first_answer = ok_json(R"([{"name": "db", "tunnelPort": 7002}])");
const std::string first_routes = "db=127.0.0.1:7002/hub";
const std::string mended_answer = ok_json(R"([{"name": "cache", "tunnelPort": 7003}])");
const std::string mended_routes = "cache=127.0.0.1:7003/hub";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds deadline = 10s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string shown(const cproxy::published<route::table>& out) {
  std::string s;
  // Held: the feed's thread may publish a new table, freeing this one, while the loop reads it.
  const std::shared_ptr<const route::table> table = out.load();
  for (const route::route& x : table->routes())
    s += (s.empty() ? "" : " ") + x.name + "=" + x.upstream_text() + "/" +
         std::string(route::to_string(x.from));
  return s;
}

struct env_set {
  std::string name;
  env_set(std::string n, const std::string& value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~env_set() { ::unsetenv(name.c_str()); }
  env_set(const env_set&) = delete;
  env_set& operator=(const env_set&) = delete;
};

// A CA of the test's own, trusted for the length of the case (OpenSSL reads SSL_CERT_FILE when the
// client loads its default verify paths), and server contexts for leaves it signs.
struct test_ca {
  temp_dir dir{"connect-hub-ca"};
  tls::key_pair ca = tls::make_ca({}, std::chrono::system_clock::now());
  std::string file = dir.write("ca.pem", tls::cert_to_pem(*ca.cert));
  env_set trusted{"SSL_CERT_FILE", file};

  fake_hub::ctx_ptr serving(const std::vector<std::string>& names,
                            tls::sys_time now = std::chrono::system_clock::now()) const {
    const tls::key_pair leaf = tls::mint_leaf(ca, names, now);
    fake_hub::ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
    BOOST_TEST_REQUIRE(SSL_CTX_use_certificate(ctx.get(), leaf.cert.get()) == 1);
    BOOST_TEST_REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), leaf.key.get()) == 1);
    return ctx;
  }
};

struct outage {
  std::string url;                 // the hub URL the feed polls
  std::function<void()> breaking;  // puts the hub in its bad state
  std::string why;                 // what the one warning says after "unavailable: "
  std::function<void()> mending;   // brings it back (then it answers mended_answer)
  bool counts_connections = true;  // false when the hub accepts nothing while broken
  std::chrono::milliseconds timeout = 2s;
};

// The story every case tells: good routes, the outage (routes kept, one warning however many polls
// fail), the recovery (the new answer applies, one line says so); the apiKey in no log line.
void tell(cproxy::io::backend_kind io, fake_hub& hub, const outage& o) {
  temp_dir home{"connect-hub-outage"};
  const std::string log_file = home.file("proxy.log");
  BOOST_TEST_REQUIRE(cproxy::log::open_file(log_file));
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config;
  config.home = home.path;
  config.hub_url = o.url;
  config.api_key = api_key;
  config.hub_interval = 50ms;
  config.hub_timeout = o.timeout;
  config.hub_io = io;
  hub.answer(first_answer);
  route_feed feed(config, out);
  feed.start();
  BOOST_TEST_REQUIRE(eventually([&] { return shown(out) == first_routes; }), shown(out) + slurp(log_file));

  o.breaking();
  const std::string warning = "hub: " + o.url + " unavailable: " + o.why + "; keeping 1 hub route(s)\n";
  BOOST_TEST_REQUIRE(eventually([&] { return slurp(log_file).find(" unavailable: ") != std::string::npos; }),
                     slurp(log_file));
  // Three more failed polls: still one warning.
  if (o.counts_connections) {
    const std::size_t seen = hub.connections();
    BOOST_TEST(eventually([&] { return hub.connections() >= seen + 3; }));
  } else {
    std::this_thread::sleep_for(10 * config.hub_interval);
  }
  std::string text = slurp(log_file);
  BOOST_TEST(count_of(text, " unavailable: ") == 1u, text);
  BOOST_TEST(count_of(text, warning) == 1u, "expected: " + warning + "log:\n" + text);
  BOOST_TEST(shown(out) == first_routes);

  o.mending();
  hub.answer(mended_answer);
  BOOST_TEST(eventually([&] { return shown(out) == mended_routes; }), shown(out));
  feed.stop();
  text = slurp(log_file);
  BOOST_TEST(count_of(text, "hub: " + o.url + " recovered\n") == 1u, text);
  BOOST_TEST(count_of(text, " unavailable: ") == 1u, text);
  BOOST_TEST(text.find(api_key) == std::string::npos, text);
  // The key did reach the hub, as the header the contract names.
  BOOST_TEST(hub.request_texts().at(0).find("\r\nx-api-key: " + api_key + "\r\n") != std::string::npos);
}

std::string plain_url(const fake_hub& hub) {
  return "http://127.0.0.1:" + std::to_string(hub.port());
}
// By name: the lookup thread, SNI and the host name check all run.
std::string tls_url(const fake_hub& hub) {
  return "https://localhost:" + std::to_string(hub.port());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hub_outages)

CPROXY_IO_TEST_CASE(a_hub_that_hangs) {
  fake_hub hub(first_answer);
  tell(Backend::kind, hub,
       {.url = plain_url(hub),
        .breaking = [&] { hub.hang(); },
        .why = "no answer within 300 ms (reading the response)",
        .mending = [] {},
        .timeout = 300ms});
}

CPROXY_IO_TEST_CASE(a_hub_that_hangs_in_the_tls_handshake) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"localhost"}));
  // A plain server where a TLS one was: it reads the ClientHello and says nothing.
  tell(Backend::kind, hub,
       {.url = tls_url(hub),
        .breaking =
            [&] {
              hub.serve_tls(nullptr);
              hub.hang();
            },
        .why = "no answer within 300 ms (TLS handshake)",
        .mending = [&] { hub.serve_tls(ca.serving({"localhost"})); },
        .timeout = 300ms});
}

CPROXY_IO_TEST_CASE(a_hub_slower_than_the_timeout) {
  fake_hub hub(first_answer);
  tell(Backend::kind, hub,
       {.url = plain_url(hub),
        .breaking = [&] { hub.answer(mended_answer, 600ms); },
        .why = "no answer within 300 ms (reading the response)",
        .mending = [] {},
        .timeout = 300ms});
}

// Late but within the timeout is not an outage.
CPROXY_IO_TEST_CASE(a_slow_hub_within_the_timeout_is_waited_for) {
  fake_hub hub(first_answer);
  temp_dir home;
  const std::string log_file = home.file("proxy.log");
  BOOST_TEST_REQUIRE(cproxy::log::open_file(log_file));
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config;
  config.home = home.path;
  config.hub_url = plain_url(hub);
  config.api_key = api_key;
  config.hub_interval = 50ms;
  config.hub_timeout = 5s;
  config.hub_io = Backend::kind;
  hub.answer(mended_answer, 300ms);
  route_feed feed(config, out);
  feed.start();
  BOOST_TEST(eventually([&] { return shown(out) == mended_routes; }), shown(out));
  BOOST_TEST(eventually([&] { return hub.requests() >= 3; }));
  feed.stop();
  BOOST_TEST(slurp(log_file).find(" unavailable: ") == std::string::npos, slurp(log_file));
}

CPROXY_IO_TEST_CASE(a_hub_that_redirects) {
  fake_hub hub(first_answer);
  tell(Backend::kind, hub,
       {.url = plain_url(hub),
        .breaking =
            [&] {
              hub.answer(
                  "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/v1/services\r\n"
                  "Content-Length: 0\r\n\r\n");
            },
        .why = "it answered 302",
        .mending = [] {}});
}

CPROXY_IO_TEST_CASE(a_hub_that_answers_10_mb) {
  fake_hub hub(first_answer);
  const std::string ten_mb(10 * 1024 * 1024, ' ');
  tell(Backend::kind, hub,
       {.url = plain_url(hub),
        .breaking = [&] { hub.answer(ok_json("[" + ten_mb + "]")); },
        .why = "the response body is over 1 MiB",
        .mending = [] {}});
}

// Without a length the limit is met while reading, over TLS.
CPROXY_IO_TEST_CASE(a_hub_that_streams_10_mb_over_tls) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"localhost"}));
  const std::string ten_mb(10 * 1024 * 1024, ' ');
  tell(Backend::kind, hub,
       {.url = tls_url(hub),
        .breaking = [&] { hub.answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[" + ten_mb + "]"); },
        .why = "the response body is over 1 MiB",
        .mending = [] {}});
}

CPROXY_IO_TEST_CASE(a_hub_that_answers_invalid_json) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"localhost"}));
  const std::string broken = R"([{"name": "db", "tunnelPort": 70)";
  const std::string why = cproxy::control::parse_hub_services(broken).error;
  BOOST_TEST_REQUIRE(!why.empty());
  tell(Backend::kind, hub,
       {.url = tls_url(hub), .breaking = [&] { hub.answer(ok_json(broken)); }, .why = why, .mending = [] {}});
}

CPROXY_IO_TEST_CASE(a_hub_with_a_certificate_for_another_name) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"localhost"}));
  tell(Backend::kind, hub,
       {.url = tls_url(hub),
        .breaking = [&] { hub.serve_tls(ca.serving({"elsewhere.localhost"})); },
        .why = "TLS handshake failed: certificate not trusted: hostname mismatch",
        .mending = [&] { hub.serve_tls(ca.serving({"localhost"})); }});
}

// By address: the certificate must carry the IP the URL names.
CPROXY_IO_TEST_CASE(a_hub_by_address_with_a_certificate_for_a_name) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"127.0.0.1"}));
  tell(Backend::kind, hub,
       {.url = "https://127.0.0.1:" + std::to_string(hub.port()),
        .breaking = [&] { hub.serve_tls(ca.serving({"localhost"})); },
        .why = "TLS handshake failed: certificate not trusted: IP address mismatch",
        .mending = [&] { hub.serve_tls(ca.serving({"127.0.0.1"})); }});
}

CPROXY_IO_TEST_CASE(a_hub_with_an_expired_certificate) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"localhost"}));
  const auto long_ago = std::chrono::system_clock::now() - 2 * tls::leaf_lifetime;
  tell(Backend::kind, hub,
       {.url = tls_url(hub),
        .breaking = [&] { hub.serve_tls(ca.serving({"localhost"}, long_ago)); },
        .why = "TLS handshake failed: certificate not trusted: certificate has expired",
        .mending = [&] { hub.serve_tls(ca.serving({"localhost"})); }});
}

CPROXY_IO_TEST_CASE(a_hub_that_refuses_connections) {
  fake_hub hub(first_answer);
  tell(Backend::kind, hub,
       {.url = plain_url(hub),
        .breaking = [&] { hub.refuse(); },
        .why = "cannot connect to 127.0.0.1:" + std::to_string(hub.port()) + ": Connection refused",
        .mending = [] {},
        .counts_connections = false});
}

// A stop while the request waits on a hub that never answers returns without waiting for the hub (the
// request's timeout is an hour). Bounded by the decorator's timeout, not by a wall-clock assertion.
CPROXY_IO_TEST_CASE(stop_does_not_wait_for_a_hanging_tls_hub) {
  test_ca ca;
  fake_hub hub(first_answer, ca.serving({"localhost"}));
  hub.serve_tls(nullptr);
  hub.hang();
  temp_dir home;
  cproxy::published<route::table> out(std::make_shared<const route::table>());
  route_feed_config config;
  config.home = home.path;
  config.hub_url = tls_url(hub);
  config.api_key = api_key;
  config.hub_timeout = 1h;
  config.hub_io = Backend::kind;
  route_feed feed(config, out);
  feed.start();
  BOOST_TEST_REQUIRE(eventually([&] { return hub.connections() >= 1; }));
  feed.stop();
  BOOST_TEST(shown(out) == "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hub_client_errors)

// Failures are error codes of the hub category; a cancel is told from a timeout by its code, not its
// text.
CPROXY_IO_TEST_CASE(failures_are_hub_error_codes) {
  const auto ctx = cproxy::io::make_context(Backend::kind);
  std::string error;
  std::uint16_t closed_port = 0;
  {
    fake_hub gone(first_answer);
    closed_port = gone.port();
  }
  auto where = hub_http::parse_url("http://127.0.0.1:" + std::to_string(closed_port), error);
  BOOST_TEST_REQUIRE(where.has_value());
  auto r = cproxy::io::block_on(*ctx, hub_http::get(ctx.get(), *where, "/v1/services", {}, 5s));
  BOOST_TEST((r.ec == hub_http::hub_errc::connect_failed), r.ec.message());
  BOOST_TEST(r.ec.category().name() == std::string("hub"));

  fake_hub silent(first_answer);
  silent.hang();
  where = hub_http::parse_url(plain_url(silent), error);
  r = cproxy::io::block_on(*ctx, hub_http::get(ctx.get(), *where, "/v1/services", {}, 200ms));
  BOOST_TEST((r.ec == hub_http::hub_errc::timed_out), r.ec.message());
  BOOST_TEST(r.detail == "no answer within 200 ms (reading the response)");

  // cancel_all once the hub holds the request: what the poller's stop does.
  const auto seen = silent.connections();
  cproxy::io::context* c = ctx.get();
  std::thread canceller([&] {
    eventually([&] { return silent.connections() > seen; });
    c->post([c] { c->cancel_all(); });
  });
  r = cproxy::io::block_on(*ctx, hub_http::get(ctx.get(), *where, "/v1/services", {}, 1h));
  canceller.join();
  BOOST_TEST((r.ec == hub_http::hub_errc::cancelled), r.ec.message());
}

BOOST_AUTO_TEST_SUITE_END()
