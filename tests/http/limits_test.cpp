// The body limit (--max-body): a request body over it gets the 413 JSON and never reaches the upstream,
// whether its length is announced (Content-Length) or found while relaying (chunked); one within it
// passes. Both io backends.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

constexpr std::size_t limit = 1000;

struct limits_env {
  scripted_upstream api{"api"};
  proxy_pool proxies{
      proxy_config{.routes = {{"api", api.port(), ""}}, .extra = {}, .args = {"--max-body", "1000"}}};
};

std::string chunked_body(std::size_t total) {
  std::string body;
  for (std::size_t sent = 0; sent < total; sent += 100) body += "64\r\n" + std::string(100, 'c') + "\r\n";
  return body + "0\r\n\r\n";
}

void check_413(const round_trip_result& r) {
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 413);
  BOOST_TEST(
      r.response->body ==
      R"({"error":"Payload Too Large","message":"The request body exceeds this proxy's limit of 1000 bytes (--max-body)."})");
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(limits, with_env<limits_env>, *shared_env<limits_env>())

BOOST_DATA_TEST_CASE(an_announced_body_over_the_limit_gets_413, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/limits/announced/") + io;
  check_413(round_trip(port, request("POST", "api.localhost", target, "", std::string(limit + 1, 'x'))));
  BOOST_TEST(!env.api.server().received(target), "the upstream must not see a refused request");
}

BOOST_DATA_TEST_CASE(a_chunked_body_over_the_limit_gets_413, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/limits/chunked/") + io;
  check_413(round_trip(port, request("POST", "api.localhost", target, "Transfer-Encoding: chunked\r\n") +
                                 chunked_body(limit + 100)));
  for (const recorded_request& r : env.api.server().requests_for(target))
    BOOST_TEST(!r.body_complete, "a body over the limit must never reach the upstream whole");
}

BOOST_DATA_TEST_CASE(a_body_within_the_limit_passes, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/limits/within/") + io;
  const auto r = round_trip(port, request("POST", "api.localhost", target, "", std::string(limit, 'y')));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  const auto seen = env.api.server().requests_for(target);
  BOOST_REQUIRE(seen.size() == 1u);
  BOOST_TEST(seen.front().body_size == limit);
}

BOOST_AUTO_TEST_SUITE_END()
