// Pooled upstream connections (src/proxy/upstream_pool.*): one the upstream closed while it sat in the pool
// is never the end of a request, and one with stray bytes waiting never answers a request with them, however
// soon the next request comes. Both io backends.
#include <sys/socket.h>

#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

struct reuse_env {
  scripted_upstream api{"api"};
  proxy_pool proxies{proxy_config{.routes = {{"api", api.port(), ""}}, .extra = "", .args = {}}};
  std::atomic<int> closed{0};      // answers after which the upstream closed its end
  std::atomic<int> stray_sent{0};  // answers followed by bytes nobody asked for

  reuse_env() {
    // Answers as if the connection stayed open (no Connection: close), then closes it.
    api.on("/close-after/", [this](upstream_conn& c, const recorded_request& r) {
      answer_with_head(c, r);
      ::shutdown(c.fd(), SHUT_RDWR);
      ++closed;
      return false;
    });
    // Answers, then, once the proxy has pooled the connection, sends a second response nobody asked for,
    // and keeps serving the connection.
    api.on("/stray/", [this](upstream_conn& c, const recorded_request& r) {
      answer_with_head(c, r);
      std::this_thread::sleep_for(50ms);  // after the proxy's look for bytes left behind the response
      c.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray");
      ++stray_sent;
      return true;
    });
  }
};

// Polls until `counter` passes `before` (the upstream thread has done its part).
bool wait_past(const std::atomic<int>& counter, int before) {
  for (int i = 0; i < 500 && counter.load() <= before; ++i) std::this_thread::sleep_for(10ms);
  return counter.load() > before;
}

// One request on the kept-alive client `c`, answered 200 by the upstream's echo of the head.
void expect_echo(raw_client& c, const std::string& bytes, const std::string& target) {
  BOOST_REQUIRE_MESSAGE(c.send(bytes), c.error());
  const auto r = c.read_response();
  BOOST_REQUIRE_MESSAGE(r, c.error());
  BOOST_TEST(r->status == 200);
  BOOST_TEST(r->get("x-upstream").value_or("") == "api");
  BOOST_TEST(r->body.find(target) != std::string::npos, r->body);
  BOOST_TEST(r->body != "stray");
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(upstream_reuse, with_env<reuse_env>, *shared_env<reuse_env>())

BOOST_DATA_TEST_CASE(a_pooled_connection_the_upstream_closed_is_replaced_for_a_get_and_a_post,
                     bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  const std::string base = "/reuse/" + std::string(io);

  // GET: the closed connection is noticed before it is used, or the request is sent again on a new one.
  int before = env.closed.load();
  expect_echo(c, request("GET", "api.localhost", base + "/close-after/1"), base + "/close-after/1");
  BOOST_REQUIRE(wait_past(env.closed, before));
  expect_echo(c, request("GET", "api.localhost", base + "/get-after-close"), base + "/get-after-close");

  // POST: its body cannot be sent twice, so the closed connection must be noticed before it is used.
  before = env.closed.load();
  expect_echo(c, request("GET", "api.localhost", base + "/close-after/2"), base + "/close-after/2");
  BOOST_REQUIRE(wait_past(env.closed, before));
  expect_echo(c, request("POST", "api.localhost", base + "/post-after-close", "", "payload"),
              base + "/post-after-close");
  const auto posted = env.api.server().requests_for(base + "/post-after-close");
  BOOST_REQUIRE_EQUAL(posted.size(), 1u);
  BOOST_TEST(posted[0].body == "payload");
}

BOOST_DATA_TEST_CASE(stray_bytes_on_a_pooled_connection_never_answer_a_request, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  const std::string base = "/reuse/" + std::string(io);

  // A request without a body, the moment the stray bytes are in (no idle time for them to be noticed in).
  int before = env.stray_sent.load();
  expect_echo(c, request("GET", "api.localhost", base + "/stray/1"), base + "/stray/1");
  BOOST_REQUIRE(wait_past(env.stray_sent, before));
  expect_echo(c, request("GET", "api.localhost", base + "/get-after-stray"), base + "/get-after-stray");

  // A request with a body, the same.
  before = env.stray_sent.load();
  expect_echo(c, request("GET", "api.localhost", base + "/stray/2"), base + "/stray/2");
  BOOST_REQUIRE(wait_past(env.stray_sent, before));
  expect_echo(c, request("POST", "api.localhost", base + "/post-after-stray", "", "x"),
              base + "/post-after-stray");

  for (const auto& [stray_target, after_target] :
       {std::pair<std::string, std::string>{"/stray/1", "/get-after-stray"},
        {"/stray/2", "/post-after-stray"}}) {
    const auto stray = env.api.server().requests_for(base + stray_target);
    const auto after = env.api.server().requests_for(base + after_target);
    BOOST_REQUIRE(stray.size() == 1u && after.size() == 1u);
    BOOST_TEST(after[0].connection != stray[0].connection, "the connection with stray bytes was used again");
  }
}

BOOST_AUTO_TEST_SUITE_END()
