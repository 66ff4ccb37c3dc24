// Upstream failures (product.md, HTTP behaviour, errors): refused -> the reference's 502, silent past the
// response timeout -> 504, closed before answering -> 502, closed mid-response -> that client's connection
// closes and no other connection notices. Both io backends; the proxy runs with a 1 s response timeout.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

constexpr std::size_t promised_length = 1'000'000;

struct errors_env {
  scripted_upstream api{"api"};
  // Refused: "dead" on 127.0.0.1 only; "gone" without a host, so both 127.0.0.1 and ::1 refuse.
  closed_port dead_port;
  closed_port gone_port;
  proxy_pool proxies{
      proxy_config{.routes = {{"api", api.port(), ""},
                              {"dead", dead_port.port(), "127.0.0.1"},
                              {"gone", gone_port.port(), ""}},
                   // hold 0: these routes test the immediate 502 (restart-holding has hold_test.cpp).
                   .extra = R"("timeouts": {"response": 1, "hold": 0})",
                   .args = {}}};

  errors_env() {
    // Reads the request, never answers, holds the connection until the proxy gives up on it.
    api.on("/err/silent", [](upstream_conn& c, const recorded_request&) {
      c.wait_peer_close(30s);
      return false;
    });
    api.on("/err/close-early", [](upstream_conn&, const recorded_request&) { return false; });
    // Promises a long body, sends a tenth of it, and goes away.
    api.on("/err/close-mid", [](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(promised_length) + "\r\n\r\n" +
              std::string(promised_length / 10, 'x'));
      return false;
    });
    api.on("/err/chunked-mid", [](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n");
      return false;
    });
    // The head at once, the body after a pause longer than the response timeout: the timeout is for the
    // first response byte, so this response must arrive whole.
    api.on("/err/slow-body", [](upstream_conn& c, const recorded_request&) {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
      std::this_thread::sleep_for(1500ms);  // the behaviour under test, not synchronisation
      return c.write("slow body");
    });
  }
};

void check_keys_in_order(const json::value& v, const std::vector<std::string>& keys) {
  std::vector<std::string> order;
  if (v.is_object()) {
    for (const auto& kv : v.as_object()) order.emplace_back(kv.key());
  }
  BOOST_TEST(order == keys, boost::test_tools::per_element());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(errors, with_env<errors_env>, *shared_env<errors_env>())

// A bad chunk size that came with the head is the client's error, whatever the upstream's state: 400,
// not the 502 of the refused upstream it would otherwise have been sent to.
BOOST_DATA_TEST_CASE(a_bad_chunk_with_the_head_gets_400_even_when_the_upstream_is_down, bdata::make(backends),
                     io) {
  const unsigned port = env.proxies.get(io).port();
  for (const std::string size : {"zz", "5g", "1fffffffffffffffff5"}) {
    BOOST_TEST_CONTEXT(size) {
      raw_client c(port);
      BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
      BOOST_REQUIRE_MESSAGE(
          c.send("POST /x HTTP/1.1\r\nHost: dead.localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + size +
                 "\r\nhello\r\n0\r\n\r\n"),
          c.error());
      const auto r = c.read_response(10s);
      BOOST_REQUIRE_MESSAGE(r, "no response: " << c.error());
      BOOST_TEST(r->status == 400, dump(r->head) << r->body);
      BOOST_TEST(r->body == R"({"error":"Bad Request","message":"The request is not valid HTTP/1.1."})");
      BOOST_TEST(c.wait_closed(10s));
    }
  }
}

// The 502 goes out before the body was read: the proxy must not close with the body unread (the kernel
// would send a reset that destroys the 502), but stop sending and drop what still comes (a lingering
// close), so a client still uploading reads its answer.
BOOST_DATA_TEST_CASE(a_refused_upstreams_502_reaches_a_client_still_sending_its_body, bdata::make(backends),
                     io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string body(8 * 1024 * 1024, 'b');  // more than loopback's socket buffers hold
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE_MESSAGE(c.send("POST /upload HTTP/1.1\r\nHost: dead.localhost\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n"),
                        c.error());
  BOOST_REQUIRE_MESSAGE(c.send(body), "the upload was cut off: " << c.error());
  const auto r = c.read_response(10s);
  BOOST_REQUIRE_MESSAGE(r, "no response: " << c.error());
  BOOST_TEST(r->status == 502);
  BOOST_TEST(r->body == R"({"error":"Bad Gateway: the service is not responding.","service":"dead"})");
  BOOST_TEST(c.wait_closed(10s));
}

BOOST_DATA_TEST_CASE(a_refused_upstream_gets_the_reference_502, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  for (const std::string& name : std::vector<std::string>{"dead", "gone"}) {
    BOOST_TEST_CONTEXT("route " << name) {
      const auto r = round_trip(port, request("GET", name + ".localhost:" + std::to_string(port), "/"));
      BOOST_REQUIRE_MESSAGE(r.response, r.error);
      BOOST_TEST(r.response->status == 502);
      BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
      BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");
      const auto v = parse_json(r.response->body);
      BOOST_REQUIRE_MESSAGE(v, r.response->body);
      const json::value expected = {{"error", "Bad Gateway: the service is not responding."},
                                    {"service", name}};
      BOOST_TEST(*v == expected, r.response->body);
      check_keys_in_order(*v, {"error", "service"});
    }
  }
}

BOOST_DATA_TEST_CASE(a_silent_upstream_gets_504_after_the_response_timeout, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  // 1 s configured; the deadline only bounds the test.
  const auto r = round_trip(port, request("GET", "api.localhost", std::string("/err/silent/") + io), 20s);
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 504);
  BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
  BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");
  BOOST_TEST(parse_json(r.response->body).has_value(), r.response->body);
}

BOOST_DATA_TEST_CASE(an_upstream_closing_before_answering_gets_502, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, request("GET", "api.localhost", std::string("/err/close-early/") + io));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 502);
  const auto v = parse_json(r.response->body);
  BOOST_REQUIRE_MESSAGE(v && v->is_object(), r.response->body);
  const json::value error = member(v->as_object(), "error");
  BOOST_TEST((error.is_string() && std::string(error.as_string()).starts_with("Bad Gateway: ")),
             r.response->body);
  BOOST_TEST(member(v->as_object(), "service") == json::value("api"));
  check_keys_in_order(*v, {"error", "service"});
}

BOOST_DATA_TEST_CASE(an_upstream_closing_mid_response_closes_that_client_only, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  // A keep-alive client that was served before, and must be served again after.
  raw_client bystander(port);
  BOOST_REQUIRE_MESSAGE(bystander.ok(), bystander.error());
  BOOST_REQUIRE(bystander.send(request("GET", "api.localhost", "/err/bystander/1")));
  const auto before = bystander.read_response();
  BOOST_REQUIRE_MESSAGE(before, bystander.error());
  BOOST_TEST(before->status == 200);

  for (const std::string& path : std::vector<std::string>{"/err/close-mid/", "/err/chunked-mid/"}) {
    BOOST_TEST_CONTEXT(path) {
      raw_client victim(port);
      BOOST_REQUIRE_MESSAGE(victim.ok(), victim.error());
      BOOST_REQUIRE(victim.send(request("GET", "api.localhost", path + io)));
      // The head was relayed (the response had started), the body cannot complete: the proxy must close
      // this connection, not leave the client waiting for bytes that will never come.
      const auto r = victim.read_response(15s);
      BOOST_TEST(!r, "a truncated response must not look complete: " << (r ? r->body.size() : 0) << " bytes");
      BOOST_TEST(victim.peer_closed(), "the connection is still open: " << victim.error());
    }
  }

  BOOST_REQUIRE(bystander.send(request("GET", "api.localhost", "/err/bystander/2")));
  const auto after = bystander.read_response();
  BOOST_REQUIRE_MESSAGE(after, bystander.error());
  BOOST_TEST(after->status == 200);
  const auto fresh = round_trip(port, request("GET", "api.localhost", "/err/bystander/3"));
  BOOST_REQUIRE_MESSAGE(fresh.response, fresh.error);
  BOOST_TEST(fresh.response->status == 200);
}

BOOST_DATA_TEST_CASE(a_slow_body_after_a_prompt_head_is_not_cut, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(port, request("GET", "api.localhost", std::string("/err/slow-body/") + io), 20s);
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  BOOST_TEST(r.response->body == "slow body");
}

BOOST_AUTO_TEST_SUITE_END()
