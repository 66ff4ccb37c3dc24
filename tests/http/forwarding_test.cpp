// Forwarding (product.md, HTTP behaviour): what the upstream receives (Host as sent, X-Forwarded-*, no
// Forwarded, no underscore names, no hop-by-hop fields, the x-private-connect-* marks), and loop detection,
// with a real chain where web's dev server proxies to api.localhost through us. Both io backends.
#include <atomic>
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

std::string without_spaces(std::string s) {
  std::erase(s, ' ');
  return s;
}

// web's dev server: on /chain/<to>/... it proxies the request to <to>.localhost through the proxy, copying
// every field but Host (as Vite's proxy does), and answers with what it got back. The test sets the
// proxy's port before use.
struct forwarding_env {
  scripted_upstream api{"api"};
  scripted_upstream web{"web"};
  std::atomic<unsigned> proxy_port{0};
  std::atomic<int> chain_depth{0};  // bounds the recursion should the proxy not stop a loop at all
  proxy_pool proxies{proxy_config{
      .routes = {{"api", api.port(), ""}, {"web", web.port(), "localhost"}}, .extra = "", .args = {}}};

  forwarding_env() {
    web.on("/chain/", [this](upstream_conn& c, const recorded_request& r) {
      const std::size_t from = r.target.find("/chain/") + 7;
      const std::string to = r.target.substr(from, r.target.find('/', from) - from);
      std::string out = "GET " + r.target + " HTTP/1.1\r\nHost: " + to + ".localhost\r\n";
      for (const field& f : r.head.fields) {
        if (!iequals(f.name, "host") && !iequals(f.name, "connection"))
          out += f.name + ": " + f.value + "\r\n";
      }
      out += "Connection: close\r\n\r\n";
      if (chain_depth.fetch_add(1) >= 8) {
        chain_depth.fetch_sub(1);
        return c.write(simple_response(599, "Chain Too Deep", "unbounded loop", {"X-Upstream: web"}));
      }
      raw_client hop(proxy_port.load());
      std::optional<http_response> got;
      if (hop.ok() && hop.send(out)) got = hop.read_final_response();
      chain_depth.fetch_sub(1);
      if (!got) return c.write(simple_response(599, "Chain Failed", hop.error(), {"X-Upstream: web"}));
      return c.write(
          simple_response(got->status, "Relayed", got->body,
                          {"X-Upstream: web", "X-Chain-Upstream: " + got->get("x-upstream").value_or("")}));
    });
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(forwarding, with_env<forwarding_env>, *shared_env<forwarding_env>())

BOOST_DATA_TEST_CASE(the_upstream_gets_host_as_sent_and_the_proxy_s_x_forwarded_fields, bdata::make(backends),
                     io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  const std::string target = std::string("/fwd/fields/") + io;
  const std::string host = "API.localhost:" + p;
  // Everything a client may claim about the forwarding is replaced or dropped.
  const auto r = round_trip(port, request("GET", host, target,
                                          "X-Forwarded-For: 6.6.6.6\r\n"
                                          "X-Forwarded-For: 7.7.7.7\r\n"
                                          "X-Forwarded-Proto: https\r\n"
                                          "X-Forwarded-Host: evil.example\r\n"
                                          "X-Forwarded-Port: 1\r\n"
                                          "Forwarded: for=6.6.6.6;proto=https\r\n"
                                          "X_Secret: underscore\r\n"
                                          "X-Normal: kept as is\r\n"
                                          "User-Agent: http-suite/1\r\n"
                                          "Accept: */*\r\n"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  BOOST_TEST(r.response->get("x-upstream").value_or("") == "api");
  BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");

  const auto seen = env.api.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  const message_head& h = seen[0].head;
  BOOST_TEST_INFO("upstream got: " << dump(h));
  BOOST_TEST(h.count("host") == 1u);
  BOOST_TEST(h.get("host").value_or("") == host);
  BOOST_TEST(h.count("x-forwarded-for") == 1u);
  BOOST_TEST(h.get("x-forwarded-for").value_or("") == "127.0.0.1");
  BOOST_TEST(h.count("x-forwarded-proto") == 1u);
  BOOST_TEST(h.get("x-forwarded-proto").value_or("") == "http");
  BOOST_TEST(h.count("x-forwarded-host") == 1u);
  BOOST_TEST(h.get("x-forwarded-host").value_or("") == host);
  BOOST_TEST(h.count("x-forwarded-port") == 1u);
  BOOST_TEST(h.get("x-forwarded-port").value_or("") == p);
  BOOST_TEST(h.count("forwarded") == 0u);
  for (const field& f : h.fields)
    BOOST_TEST(f.name.find('_') == std::string::npos, "underscore name " << f.name);
  BOOST_TEST(h.get("x-normal").value_or("") == "kept as is");
  BOOST_TEST(h.get("user-agent").value_or("") == "http-suite/1");
  BOOST_TEST(h.get("accept").value_or("") == "*/*");
  BOOST_TEST(h.count("x-private-connect-proxy") == 1u);
  BOOST_TEST(h.get("x-private-connect-proxy").value_or("") == "1");
  BOOST_TEST(h.count("x-private-connect-route") == 1u);
  BOOST_TEST(h.get("x-private-connect-route").value_or("") == "api");
  BOOST_TEST(seen[0].target == target);
}

BOOST_DATA_TEST_CASE(the_host_is_kept_exactly_as_sent, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  int n = 0;
  for (const std::string& host :
       std::vector<std::string>{"api.localhost", "api.localhost.:" + p, "tenant1.Api.localhost:" + p}) {
    const std::string target = std::string("/fwd/host/") + io + "/" + std::to_string(n++);
    const auto r = round_trip(port, request("GET", host, target));
    BOOST_REQUIRE_MESSAGE(r.response, r.error);
    const auto seen = env.api.server().requests_for(target);
    BOOST_REQUIRE_EQUAL(seen.size(), 1u);
    BOOST_TEST(seen[0].get("host").value_or("") == host);
    BOOST_TEST(seen[0].get("x-forwarded-host").value_or("") == host);
  }
}

BOOST_DATA_TEST_CASE(hop_by_hop_fields_are_removed, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/fwd/hop/") + io;
  // Upgrade without "upgrade" in Connection is no upgrade: the field is just removed.
  const auto r = round_trip(port, request("GET", "api.localhost", target,
                                          "Connection: keep-alive, X-Hop-Listed\r\n"
                                          "X-Hop-Listed: secret\r\n"
                                          "Keep-Alive: timeout=5\r\n"
                                          "Proxy-Connection: keep-alive\r\n"
                                          "TE: trailers\r\n"
                                          "Upgrade: h2c\r\n"
                                          "X-End-To-End: yes\r\n"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  const auto seen = env.api.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  const message_head& h = seen[0].head;
  BOOST_TEST_INFO("upstream got: " << dump(h));
  BOOST_TEST(h.count("x-hop-listed") == 0u);
  BOOST_TEST(h.count("keep-alive") == 0u);
  BOOST_TEST(h.count("proxy-connection") == 0u);
  BOOST_TEST(h.count("te") == 0u);
  BOOST_TEST(h.count("upgrade") == 0u);
  // The proxy may say its own keep-alive/close to the upstream, but nothing the client listed.
  BOOST_TEST(!h.has_token("connection", "x-hop-listed"));
  BOOST_TEST(!h.has_token("connection", "upgrade"));
  BOOST_TEST(h.get("x-end-to-end").value_or("") == "yes");
}

BOOST_DATA_TEST_CASE(a_request_that_already_passed_its_route_is_a_loop, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  int n = 0;
  for (const std::string& marks : std::vector<std::string>{"api", "web, api", "web,api,other"}) {
    BOOST_TEST_CONTEXT("x-private-connect-route: " << marks) {
      const std::string target = std::string("/fwd/loop/") + io + "/" + std::to_string(n++);
      const auto r = round_trip(
          port, request("GET", "api.localhost", target,
                        "x-private-connect-route: " + marks + "\r\nx-private-connect-proxy: 1\r\n"));
      BOOST_REQUIRE_MESSAGE(r.response, r.error);
      BOOST_TEST(r.response->status == 508);
      BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
      BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");
      const auto v = parse_json(r.response->body);
      BOOST_REQUIRE_MESSAGE(v && v->is_object(), r.response->body);
      BOOST_TEST(member(v->as_object(), "error") == json::value("Loop Detected"));
      const json::value message = member(v->as_object(), "message");
      BOOST_TEST(message.is_string(), r.response->body);
      // It names the route, so that a developer finds the dev server whose proxy points back at us.
      if (message.is_string()) BOOST_TEST(std::string(message.as_string()).find("api") != std::string::npos);
      BOOST_TEST(env.api.server().requests_for(target).empty(), "a loop must not reach the upstream");
    }
  }
}

BOOST_DATA_TEST_CASE(the_fifth_hop_is_a_loop_and_the_fourth_is_not, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string fifth = std::string("/fwd/hops5/") + io;
  const auto loop =
      round_trip(port, request("GET", "api.localhost", fifth, "x-private-connect-proxy: 4\r\n"));
  BOOST_REQUIRE_MESSAGE(loop.response, loop.error);
  BOOST_TEST(loop.response->status == 508);
  BOOST_TEST(loop.response->body.find("Loop Detected") != std::string::npos, loop.response->body);
  BOOST_TEST(env.api.server().requests_for(fifth).empty());

  const std::string fourth = std::string("/fwd/hops4/") + io;
  const auto pass =
      round_trip(port, request("GET", "api.localhost", fourth, "x-private-connect-proxy: 3\r\n"));
  BOOST_REQUIRE_MESSAGE(pass.response, pass.error);
  BOOST_TEST(pass.response->status == 200);
  const auto seen = env.api.server().requests_for(fourth);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(seen[0].get("x-private-connect-proxy").value_or("") == "4");
  BOOST_TEST(seen[0].head.count("x-private-connect-proxy") == 1u);
}

BOOST_DATA_TEST_CASE(a_legitimate_chain_passes_with_the_marks_extended, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string target = std::string("/fwd/legit/") + io;
  const auto r = round_trip(port, request("GET", "web.localhost", target,
                                          "x-private-connect-route: api\r\nx-private-connect-proxy: 1\r\n"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  BOOST_TEST(r.response->get("x-upstream").value_or("") == "web");
  const auto seen = env.web.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  BOOST_TEST(without_spaces(seen[0].get("x-private-connect-route").value_or("")) == "api,web");
  BOOST_TEST(seen[0].get("x-private-connect-proxy").value_or("") == "2");
}

BOOST_DATA_TEST_CASE(web_s_dev_server_calling_api_through_us_works, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  env.proxy_port = port;
  const std::string target = std::string("/chain/api/") + io;
  const auto r = round_trip(port, request("GET", "web.localhost", target));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200, r.response->body);
  BOOST_TEST(r.response->get("x-chain-upstream").value_or("") == "api");
  const auto at_api = env.api.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(at_api.size(), 1u);
  BOOST_TEST(without_spaces(at_api[0].get("x-private-connect-route").value_or("")) == "web,api");
  BOOST_TEST(at_api[0].get("x-private-connect-proxy").value_or("") == "2");
}

BOOST_DATA_TEST_CASE(web_s_dev_server_proxying_to_itself_is_stopped_at_once, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  env.proxy_port = port;
  // The classic misconfiguration: web's proxy setting points at web.localhost. Without loop detection
  // this would recurse until something runs out.
  const std::string target = std::string("/chain/web/") + io;
  const auto r = round_trip(port, request("GET", "web.localhost", target), 20s);
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 508, r.response->body);
  BOOST_TEST(r.response->body.find("Loop Detected") != std::string::npos, r.response->body);
  BOOST_TEST(env.web.server().requests_for(target).size() == 1u,
             "web was entered once, then the loop stopped");
}

BOOST_AUTO_TEST_SUITE_END()
