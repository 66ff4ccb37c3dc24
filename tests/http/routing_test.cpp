// Routing (product.md, Routes): which upstream a Host reaches, the own page (status JSON, HTML, HEAD), the
// 404 for an unknown name, the 421 for a foreign Host, and absolute-form requests of clients that chose us
// as their proxy. Every case on both io backends.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <set>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

// api and v2.api without a host (the default, localhost), web with "localhost" spelled out. "v2.api" is a
// dotted route name, to check that an exact name wins over the last label.
struct routing_env {
  scripted_upstream api{"api"};
  scripted_upstream web{"web"};
  scripted_upstream v2{"v2.api"};
  proxy_pool proxies{proxy_config{
      .routes = {{"api", api.port(), ""}, {"web", web.port(), "localhost"}, {"v2.api", v2.port(), ""}},
      .extra = "",
      .args = {}}};
};

// The upstream that answered (scripted upstreams say so in X-Upstream), or why there was no answer.
std::string answered_by(unsigned port, const std::string& host, const std::string& target) {
  const auto r = round_trip(port, request("GET", host, target));
  if (!r.response) return "no response: " + r.error;
  if (r.response->status != 200)
    return "status " + std::to_string(r.response->status) + ": " + r.response->body;
  return r.response->get("x-upstream").value_or("(no X-Upstream: not from an upstream)");
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(routing, with_env<routing_env>, *shared_env<routing_env>())

BOOST_DATA_TEST_CASE(a_route_name_reaches_its_upstream, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  BOOST_TEST(answered_by(port, "api.localhost:" + p, "/name") == "api");
  BOOST_TEST(answered_by(port, "web.localhost:" + p, "/name") == "web");
  BOOST_TEST(answered_by(port, "v2.api.localhost:" + p, "/name") == "v2.api");
  // The path and query reach the upstream unchanged.
  const auto seen = env.api.server().requests_for(std::string("/name?q=") + io);
  BOOST_TEST(seen.empty());  // not sent yet: guards against a stale match below
  BOOST_TEST(answered_by(port, "api.localhost:" + p, std::string("/name?q=") + io + "&x=%20y") == "api");
  const auto after = env.api.server().requests_for(std::string("/name?q=") + io);
  BOOST_REQUIRE_EQUAL(after.size(), 1u);
  BOOST_TEST(after[0].target == std::string("/name?q=") + io + "&x=%20y");
}

BOOST_DATA_TEST_CASE(host_is_case_insensitive_and_port_and_trailing_dot_are_dropped, bdata::make(backends),
                     io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  for (const std::string& host :
       std::vector<std::string>{"API.LocalHost:" + p, "api.localhost", "api.localhost.",
                                "api.localhost.:" + p, "Api.LOCALHOST.:1234", "WEB.localhost:" + p}) {
    const std::string expected = lower(host).starts_with("web") ? "web" : "api";
    BOOST_TEST(answered_by(port, host, "/case") == expected, "Host: " << host);
  }
}

BOOST_DATA_TEST_CASE(a_nested_name_routes_by_its_last_label, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  BOOST_TEST(answered_by(port, "tenant1.api.localhost:" + p, "/nested") == "api");
  BOOST_TEST(answered_by(port, "a.b.web.localhost:" + p, "/nested") == "web");
}

BOOST_DATA_TEST_CASE(an_exact_dotted_route_name_wins, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  BOOST_TEST(answered_by(port, "v2.api.localhost:" + p, "/dotted") == "v2.api");
  BOOST_TEST(answered_by(port, "V2.Api.localhost.", "/dotted") == "v2.api");
  // "x.v2.api" is no route name, so the last label decides: api, not v2.api.
  BOOST_TEST(answered_by(port, "x.v2.api.localhost:" + p, "/dotted") == "api");
}

BOOST_DATA_TEST_CASE(curl_reaches_a_route_by_name, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  const auto r = run_program({"curl", "-sS", "--max-time", "20", "-D", "-", "--resolve",
                              "web.localhost:" + p + ":127.0.0.1", "http://web.localhost:" + p + "/curl"},
                             30s);
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.err);
  BOOST_TEST(r.out.starts_with("HTTP/1.1 200"), r.out);
  BOOST_TEST(lower(r.out).find("x-upstream: web\r\n") != std::string::npos, r.out);
  BOOST_TEST(lower(r.out).find("x-private-connect-proxy: 1\r\n") != std::string::npos, r.out);
}

BOOST_DATA_TEST_CASE(the_own_page_answers_json_with_the_status_object, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string p = std::to_string(port);
  for (const std::string& host : std::vector<std::string>{"localhost:" + p, "127.0.0.1:" + p, "[::1]:" + p,
                                                          "LOCALHOST", "localhost."}) {
    BOOST_TEST_CONTEXT("Host: " << host) {
      const auto r = round_trip(port, request("GET", host, "/", "Accept: application/json\r\n"));
      BOOST_REQUIRE_MESSAGE(r.response, r.error);
      BOOST_TEST(r.response->status == 200);
      BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
      BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");
      const auto v = parse_json(r.response->body);
      BOOST_REQUIRE_MESSAGE(v && v->is_object(), "not a JSON object: " << r.response->body);
      const json::object& o = v->as_object();
      BOOST_TEST(member(o, "running") == json::value(true));
      BOOST_TEST(member(o, "pid").is_int64(), json::serialize(o));
      BOOST_TEST(member(o, "port") == json::value(port));
      BOOST_TEST(member(o, "tls") == json::value(false));
      BOOST_TEST(member(o, "startedAt").is_string(), json::serialize(o));
      BOOST_TEST(member(o, "version").is_string(), json::serialize(o));
      BOOST_TEST(member(o, "io") == json::value(io));
      BOOST_REQUIRE_MESSAGE(member(o, "routes").is_array(), json::serialize(o));
      const json::array& routes = o.at("routes").as_array();
      BOOST_REQUIRE_EQUAL(routes.size(), 3u);
      // Sorted by name; each exactly {name, url, upstream, source}.
      const std::string names[] = {"api", "v2.api", "web"};
      const unsigned ports[] = {env.api.port(), env.v2.port(), env.web.port()};
      for (std::size_t i = 0; i < 3; ++i) {
        BOOST_REQUIRE(routes[i].is_object());
        const json::object& route = routes[i].as_object();
        std::set<std::string> keys;
        for (const auto& kv : route) keys.insert(std::string(kv.key()));
        BOOST_TEST((keys == std::set<std::string>{"name", "url", "upstream", "source"}),
                   json::serialize(route));
        BOOST_TEST(member(route, "name") == json::value(names[i]));
        BOOST_TEST(member(route, "url") == json::value("http://" + names[i] + ".localhost:" + p));
        BOOST_TEST(member(route, "source") == json::value("config"));
        // A route to localhost may show the name or the address that answered (ambiguous in the contract).
        const json::value up = member(route, "upstream");
        const std::string upstream = up.is_string() ? std::string(up.as_string()) : json::serialize(up);
        const std::string port_suffix = ":" + std::to_string(ports[i]);
        BOOST_TEST((upstream == "127.0.0.1" + port_suffix || upstream == "localhost" + port_suffix ||
                    upstream == "[::1]" + port_suffix),
                   "upstream of " << names[i] << ": " << upstream);
      }
    }
  }
}

BOOST_DATA_TEST_CASE(the_own_page_answers_html_with_links, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  const auto r = round_trip(
      port, request("GET", "localhost:" + p, "/",
                    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200);
  BOOST_TEST(r.response->get("content-type").value_or("").starts_with("text/html"));
  BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");
  const std::string& html = r.response->body;
  for (const std::string name : {"api", "v2.api", "web"}) {
    BOOST_TEST(html.find("href=\"http://" + name + ".localhost:" + p) != std::string::npos,
               "no link to " << name << " in: " << printable(html, 3000));
  }
  BOOST_TEST(html.find(std::to_string(env.web.port())) != std::string::npos, "the upstreams are listed");
  BOOST_TEST(html.find("config") != std::string::npos, "the sources are listed");
}

BOOST_DATA_TEST_CASE(head_on_the_own_page_is_200_without_a_body, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  raw_client c(port);
  BOOST_REQUIRE_MESSAGE(c.ok(), c.error());
  BOOST_REQUIRE(c.send(request("HEAD", "localhost", "/")));
  const auto head = c.read_response(10s, /*head_request=*/true);
  BOOST_REQUIRE_MESSAGE(head, c.error());
  BOOST_TEST(head->status == 200);
  BOOST_TEST(head->get("x-private-connect-proxy").value_or("") == "1");
  // No body bytes follow: the next response on this connection starts right away with its status line.
  BOOST_REQUIRE(c.send(request("GET", "localhost", "/", "Accept: application/json\r\n")));
  const auto next = c.read_response();
  BOOST_REQUIRE_MESSAGE(next, c.error());
  BOOST_TEST(next->status == 200);
  BOOST_TEST(parse_json(next->body).has_value(), next->body);
}

BOOST_DATA_TEST_CASE(an_unknown_name_gets_the_404_json, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  const auto r = round_trip(port, request("GET", "unknown.localhost:" + p, "/unknown-name"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 404);
  BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
  BOOST_TEST(r.response->get("x-private-connect-proxy").value_or("") == "1");
  const auto v = parse_json(r.response->body);
  BOOST_REQUIRE_MESSAGE(v && v->is_object(), "not a JSON object: " << r.response->body);
  const json::value expected = {{"error", "Service not found"},
                                {"subdomain", "unknown"},
                                {"available", {"api", "v2.api", "web"}},
                                {"hint", "Try: http://api.localhost:" + p}};
  BOOST_TEST(*v == expected, json::serialize(*v));
  // The reference's field order, which people read.
  std::vector<std::string> order;
  for (const auto& kv : v->as_object()) order.emplace_back(kv.key());
  BOOST_TEST((order == std::vector<std::string>{"error", "subdomain", "available", "hint"}),
             r.response->body);
  BOOST_TEST(!env.api.server().received("/unknown-name"));
}

BOOST_DATA_TEST_CASE(a_foreign_host_gets_421_naming_it, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  // A page at api.evil.example that resolved to 127.0.0.1 (DNS rebinding) must not read api.
  for (const std::string& host :
       std::vector<std::string>{"api.evil.example", "api.evil.example:" + p, "localhost.evil.example",
                                "api.localhost.evil.example", "evil.example."}) {
    BOOST_TEST_CONTEXT("Host: " << host) {
      const auto r = round_trip(port, request("GET", host, "/rebinding"));
      BOOST_REQUIRE_MESSAGE(r.response, r.error);
      BOOST_TEST(r.response->status == 421);
      BOOST_TEST(r.response->get("content-type").value_or("").starts_with("application/json"));
      BOOST_TEST(parse_json(r.response->body).has_value(), r.response->body);
      std::string bare = host.substr(0, host.find(':'));
      if (bare.ends_with('.')) bare.pop_back();
      BOOST_TEST(r.response->body.find(bare) != std::string::npos, r.response->body);
    }
  }
  BOOST_TEST(!env.api.server().received("/rebinding"));
}

BOOST_DATA_TEST_CASE(an_absolute_form_request_routes_by_the_first_label, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const std::string p = std::to_string(port);
  const std::string target = std::string("/absolute-form/") + io + "?x=1";
  const auto r = round_trip(port, "GET http://api.example.com" + target +
                                      " HTTP/1.1\r\nHost: api.example.com\r\nAccept: */*\r\n\r\n");
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 200, r.response->body);
  BOOST_TEST(r.response->get("x-upstream").value_or("") == "api");
  const auto seen = env.api.server().requests_for(target);
  BOOST_REQUIRE_EQUAL(seen.size(), 1u);
  // RFC 9112 3.2.1: to an origin server the target goes in origin form; the Host is kept as sent.
  BOOST_TEST(seen[0].target == target);
  BOOST_TEST(seen[0].get("host").value_or("") == "api.example.com");

  // The same for a .localhost name with the proxy's port in it.
  const auto web = round_trip(port, "GET http://web.localhost:" + p +
                                        "/absolute-local HTTP/1.1\r\nHost: web.localhost:" + p + "\r\n\r\n");
  BOOST_REQUIRE_MESSAGE(web.response, web.error);
  BOOST_TEST(web.response->get("x-upstream").value_or("") == "web");
}

BOOST_DATA_TEST_CASE(curl_with_us_as_its_proxy_reaches_api, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r =
      run_program({"curl", "-sS", "--max-time", "20", "-D", "-", "-x",
                   "http://127.0.0.1:" + std::to_string(port), "http://api.example.com/curl-proxy"},
                  30s);
  BOOST_REQUIRE_MESSAGE(r.status == 0, "curl: " << r.err);
  BOOST_TEST(r.out.starts_with("HTTP/1.1 200"), r.out);
  BOOST_TEST(lower(r.out).find("x-upstream: api\r\n") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_SUITE_END()
