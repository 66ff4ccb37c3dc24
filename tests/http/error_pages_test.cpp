// Error pages for people (product.md, "Restarting upstreams": browser navigations get HTML for every
// error the proxy makes): each of 404, 421, 502, 504 and 508 once with a browser's Accept (an HTML page,
// same status, the same facts, the 404's routes as links, names escaped, nothing loaded from elsewhere)
// and once with curl's default Accept (the contract's JSON, byte for byte). Both io backends.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

constexpr std::string_view curl_accept = "Accept: */*\r\n";

struct pages_env {
  scripted_upstream api{"api"};
  closed_port dead_port;
  // hold 0: the 502 at once (holding has hold_test.cpp); a 1 s response timeout for the 504.
  proxy_pool proxies{
      proxy_config{.routes = {{"api", api.port(), ""}, {"dead", dead_port.port(), "127.0.0.1"}},
                   .extra = R"("timeouts": {"response": 1, "hold": 0})",
                   .args = {}}};
  pages_env() {
    api.on("/silent", [](upstream_conn& c, const recorded_request&) {
      c.wait_peer_close(30s);
      return false;
    });
  }
};

struct error_case {
  std::string what;
  std::string host;
  std::string target;
  std::string extra;  // more request lines
  int status;
  std::string json;                // the contract's body, exactly (PORT replaced)
  std::vector<std::string> facts;  // what the HTML page must say (PORT replaced)
  bool reloads = false;            // the page reloads itself (a service not responding yet)
};

std::string with_port(std::string s, unsigned port) {
  for (std::size_t at = s.find("PORT"); at != std::string::npos; at = s.find("PORT"))
    s.replace(at, 4, std::to_string(port));
  return s;
}

std::vector<error_case> cases() {
  return {
      {"404",
       "nope.localhost",
       "/",
       "",
       404,
       R"({"error":"Service not found","subdomain":"nope","available":["api","dead"],"hint":"Try: http://api.localhost:PORT"})",
       {"<h1>Service not found</h1>", "<code>nope</code>", "<a href=\"http://api.localhost:PORT/\">",
        "<a href=\"http://dead.localhost:PORT/\">"}},
      {"421",
       "evil.example",
       "/",
       "",
       421,
       R"({"error":"Misdirected Request","host":"evil.example","message":"This proxy answers NAME.localhost only. To reach evil.example through it, use it as an HTTP proxy (curl -x)."})",
       {"<h1>Misdirected Request</h1>", "<code>evil.example</code>",
        "This proxy answers NAME.localhost only. To reach evil.example through it, use it as an HTTP proxy "
        "(curl "
        "-x)."}},
      {"502",
       "dead.localhost",
       "/",
       "",
       502,
       R"({"error":"Bad Gateway: the service is not responding.","service":"dead"})",
       {"<code>dead</code>: Bad Gateway: the service is not responding."},
       true},
      {"504",
       "api.localhost",
       "/silent",
       "",
       504,
       R"({"error":"Gateway Timeout: the service did not answer in time.","service":"api"})",
       {"<code>api</code>: Gateway Timeout: the service did not answer in time."}},
      {"508",
       "api.localhost",
       "/",
       "x-private-connect-route: api\r\nx-private-connect-proxy: 1\r\n",
       508,
       R"({"error":"Loop Detected","message":"The request for 'api' came back through the proxy (route trail: api,api). A dev server proxies to http://api.localhost:PORT, which routes to that dev server again: point its proxy setting at the service's own port."})",
       {"<h1>Loop Detected</h1>", "<code>api</code>",
        "The request for &#39;api&#39; came back through the proxy (route trail: api,api). A dev server "
        "proxies to "
        "http://api.localhost:PORT, which routes to that dev server again: point its proxy setting at the "
        "service&#39;s own port."}},
  };
}

// Nothing the page would fetch from elsewhere: no scripts, styles, images, frames or fonts by URL.
void check_self_contained(const std::string& html) {
  for (const std::string_view outside : {"<script", "<link", "<img", "<iframe", "src=", "@import", "url("})
    BOOST_TEST(html.find(outside) == std::string::npos, "the page loads " << outside << ": " << html);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(error_pages, with_env<pages_env>, *shared_env<pages_env>())

BOOST_DATA_TEST_CASE(each_error_is_a_page_for_a_browser_and_the_json_for_curl, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  for (const error_case& e : cases()) {
    BOOST_TEST_CONTEXT(e.what) {
      const auto page =
          round_trip(port, request("GET", e.host, e.target, e.extra + std::string(browser_accept)), 20s);
      BOOST_REQUIRE_MESSAGE(page.response, page.error);
      BOOST_TEST(page.response->status == e.status);
      BOOST_TEST(page.response->get("content-type").value_or("") == "text/html; charset=utf-8");
      BOOST_TEST(page.response->get("x-private-connect-proxy").value_or("") == "1");
      const std::string& html = page.response->body;
      BOOST_TEST(html.starts_with("<!doctype html>"), html);
      BOOST_TEST(html.find("<title>" + std::to_string(e.status) + " ") != std::string::npos, html);
      for (const std::string& fact : e.facts)
        BOOST_TEST(html.find(with_port(fact, port)) != std::string::npos,
                   "missing " << fact << " in " << html);
      BOOST_TEST((html.find("<meta http-equiv=\"refresh\" content=\"1\">") != std::string::npos) == e.reloads,
                 html);
      check_self_contained(html);

      const auto json =
          round_trip(port, request("GET", e.host, e.target, e.extra + std::string(curl_accept)), 20s);
      BOOST_REQUIRE_MESSAGE(json.response, json.error);
      BOOST_TEST(json.response->status == e.status);
      BOOST_TEST(json.response->get("content-type").value_or("") == "application/json");
      BOOST_TEST(json.response->body == with_port(e.json, port));

      // No Accept at all (many HTTP libraries): the JSON too.
      const auto bare = round_trip(port, request("GET", e.host, e.target, e.extra), 20s);
      BOOST_REQUIRE_MESSAGE(bare.response, bare.error);
      BOOST_TEST(bare.response->body == with_port(e.json, port));
    }
  }
}

// A name comes from whoever sent the request: on the page it is text, never markup.
BOOST_DATA_TEST_CASE(a_hostile_name_is_escaped_on_the_404_page, bdata::make(backends), io) {
  const unsigned port = env.proxies.get(io).port();
  const auto r = round_trip(
      port, request("GET", "x<img_src=x_onerror=alert(1)>'\"&.localhost", "/", std::string(browser_accept)));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_TEST(r.response->status == 404, r.response->body);
  const std::string& html = r.response->body;
  BOOST_TEST(html.find("<img") == std::string::npos, html);
  BOOST_TEST(
      html.find("<code>x&lt;img_src=x_onerror=alert(1)&gt;&#39;&quot;&amp;</code>") != std::string::npos,
      html);
}

BOOST_AUTO_TEST_SUITE_END()
