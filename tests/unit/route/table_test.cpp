// Unit tests for connect/route/table.hpp: building the table (case-insensitive names, source precedence
// hub < config < reach, sorted routes, dev domains), the contract's lookup rules in resolve(),
// normalize_host and upstream_text. Pure: no files, no sockets.
#include "connect/route/table.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "support/unit_test.hpp"

namespace {

namespace route = cproxy::route;
using kind = route::resolution::kind;

route::route make(std::string name, std::uint16_t port, route::source from = route::source::config,
                  std::string host = "localhost") {
  route::route r;
  r.name = std::move(name);
  r.host = std::move(host);
  r.port = port;
  r.from = from;
  return r;
}

std::string text(kind k) {
  switch (k) {
    case kind::own_page:
      return "own_page";
    case kind::service:
      return "service";
    case kind::unknown_service:
      return "unknown_service";
    case kind::foreign_host:
      return "foreign_host";
  }
  return "?";
}

std::vector<std::string> names(const route::table& t) {
  std::vector<std::string> out;
  for (const route::route& r : t.routes()) out.push_back(r.name);
  return out;
}

// One line per resolution, easy to compare: "service api 8080", "unknown_service nope", "own_page".
std::string resolved(const route::table& t, std::string_view host, bool proxy_form = false) {
  const route::resolution r = route::resolve(t, host, proxy_form);
  std::string out = text(r.what);
  if (r.what == kind::service) {
    if (r.target == nullptr) return out + " without a route";
    out += " " + r.target->name + " " + std::to_string(r.target->port);
  } else if (r.what != kind::own_page) {
    if (r.target != nullptr) out += " with a route";
    out += " " + r.name;
  }
  return out;
}

// api 8080, web 5173, app 3000, the dotted name tenant1.shop 4001 beside shop 4000.
route::table sample(std::vector<std::string> dev_domains = {}) {
  return route::table({make("api", 8080), make("web", 5173), make("app", 3000), make("shop", 4000),
                       make("tenant1.shop", 4001)},
                      std::move(dev_domains));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(route_table)

// --- building the table ---

BOOST_AUTO_TEST_CASE(names_are_case_insensitive) {
  const route::table t({make("API", 8080), make("Web", 5173)});
  BOOST_TEST(names(t) == (std::vector<std::string>{"api", "web"}), boost::test_tools::per_element());
  BOOST_TEST_REQUIRE(t.find("api") != nullptr);
  BOOST_TEST(t.find("API") == t.find("api"));
  BOOST_TEST(t.find("aPi")->port == 8080);
  BOOST_TEST(t.find("WEB")->port == 5173);
  BOOST_TEST(t.find("nope") == nullptr);
  BOOST_TEST(t.find("") == nullptr);
  BOOST_TEST(t.find("ap") == nullptr);
}

BOOST_AUTO_TEST_CASE(same_name_in_two_spellings_is_one_route) {
  const route::table t({make("Api", 1), make("aPI", 2)});
  BOOST_TEST_REQUIRE(t.routes().size() == 1u);
  BOOST_TEST(t.routes()[0].name == "api");
  BOOST_TEST(t.routes()[0].port == 2);  // equal sources: the later one wins
}

BOOST_AUTO_TEST_CASE(precedence_hub_below_config_below_reach) {
  using route::source;
  // Whatever the order of the entries, the higher source wins.
  const route::table a(
      {make("api", 1, source::hub), make("api", 2, source::config), make("api", 3, source::reach)});
  const route::table b(
      {make("api", 3, source::reach), make("api", 2, source::config), make("api", 1, source::hub)});
  const route::table c(
      {make("api", 2, source::config), make("API", 3, source::reach), make("Api", 1, source::hub)});
  for (const route::table* t : {&a, &b, &c}) {
    BOOST_TEST_REQUIRE(t->routes().size() == 1u);
    BOOST_TEST(t->find("api")->port == 3);
    BOOST_TEST((t->find("api")->from == source::reach));
  }
  const route::table hub_config({make("web", 1, source::config), make("web", 9, source::hub)});
  BOOST_TEST(hub_config.find("web")->port == 1);
  BOOST_TEST((hub_config.find("web")->from == source::config));
  const route::table config_hub({make("web", 9, source::hub), make("web", 1, source::config)});
  BOOST_TEST(config_hub.find("web")->port == 1);
}

BOOST_AUTO_TEST_CASE(routes_are_sorted_by_name) {
  const route::table t(
      {make("zeta", 1), make("Alpha", 2), make("mid", 3), make("beta", 4), make("alpha2", 5)});
  BOOST_TEST(names(t) == (std::vector<std::string>{"alpha", "alpha2", "beta", "mid", "zeta"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(empty_table) {
  const route::table t;
  BOOST_TEST(t.routes().empty());
  BOOST_TEST(t.find("api") == nullptr);
  BOOST_TEST(resolved(t, "api.localhost") == "unknown_service api");
  BOOST_TEST(resolved(t, "localhost:3456") == "own_page");
}

BOOST_AUTO_TEST_CASE(source_names) {
  BOOST_TEST(route::to_string(route::source::hub) == "hub");
  BOOST_TEST(route::to_string(route::source::config) == "config");
  BOOST_TEST(route::to_string(route::source::reach) == "reach");
}

BOOST_AUTO_TEST_CASE(dev_domains_are_normalized_after_localhost) {
  const route::table t({}, {"Test", ".dev.", "localhost", "test", ""});
  std::vector<std::string> got(t.dev_domains().begin(), t.dev_domains().end());
  BOOST_TEST(got == (std::vector<std::string>{"localhost", "test", "dev"}), boost::test_tools::per_element());
  const route::table none;
  BOOST_TEST_REQUIRE(none.dev_domains().size() == 1u);
  BOOST_TEST(none.dev_domains()[0] == "localhost");
}

// --- resolve ---

BOOST_AUTO_TEST_CASE(own_page) {
  const route::table t = sample();
  for (const char* host : {"localhost", "localhost:3456", "LOCALHOST", "localhost.", "localhost.:3456",
                           "127.0.0.1", "127.0.0.1:3456", "[::1]", "[::1]:3456"}) {
    BOOST_TEST(resolved(t, host) == "own_page", host);
    BOOST_TEST(resolved(t, host, true) == "own_page", host << " as a proxy request");
  }
}

BOOST_AUTO_TEST_CASE(service_by_name_dot_localhost) {
  const route::table t = sample();
  BOOST_TEST(resolved(t, "api.localhost") == "service api 8080");
  BOOST_TEST(resolved(t, "web.localhost") == "service web 5173");
  const route::resolution r = route::resolve(t, "api.localhost", false);
  BOOST_TEST(r.name == "api");
  BOOST_TEST(r.target == t.find("api"));
}

BOOST_AUTO_TEST_CASE(case_port_and_trailing_dot_are_ignored) {
  const route::table t = sample();
  BOOST_TEST(resolved(t, "API.LocalHost") == "service api 8080");
  BOOST_TEST(resolved(t, "api.localhost:3456") == "service api 8080");
  BOOST_TEST(resolved(t, "api.localhost.") == "service api 8080");
  BOOST_TEST(resolved(t, "Api.Localhost.:3456") == "service api 8080");
}

BOOST_AUTO_TEST_CASE(dev_domains_route_like_localhost) {
  const route::table with_test = sample({"test"});
  BOOST_TEST(resolved(with_test, "api.test") == "service api 8080");
  BOOST_TEST(resolved(with_test, "API.TEST.:443") == "service api 8080");
  BOOST_TEST(resolved(with_test, "tenant9.app.test") == "service app 3000");
  BOOST_TEST(resolved(with_test, "nope.test") == "unknown_service nope");
  BOOST_TEST(resolved(with_test, "api.localhost") == "service api 8080");  // localhost stays
  BOOST_TEST(resolved(with_test, "test") == "foreign_host test");          // the bare domain names nothing
  // Without the dev domain, NAME.test is some other host.
  BOOST_TEST(resolved(sample(), "api.test") == "foreign_host api.test");
}

BOOST_AUTO_TEST_CASE(exact_dotted_name_wins_over_the_last_label) {
  const route::table t = sample({"test"});
  BOOST_TEST(resolved(t, "tenant1.shop.localhost") == "service tenant1.shop 4001");
  BOOST_TEST(resolved(t, "TENANT1.shop.test") == "service tenant1.shop 4001");
  BOOST_TEST(route::resolve(t, "tenant1.shop.localhost", false).name == "tenant1.shop");
  BOOST_TEST(resolved(t, "tenant2.shop.localhost") == "service shop 4000");
}

BOOST_AUTO_TEST_CASE(nested_names_fall_back_to_the_last_label) {
  const route::table t = sample();
  BOOST_TEST(resolved(t, "tenant1.app.localhost") == "service app 3000");
  BOOST_TEST(resolved(t, "a.b.c.api.localhost:3456") == "service api 8080");
  BOOST_TEST(route::resolve(t, "tenant1.app.localhost", false).name == "app");
  // The last label decides, not the first.
  BOOST_TEST(resolved(t, "api.nope.localhost") == "unknown_service nope");
}

BOOST_AUTO_TEST_CASE(unknown_service_names_what_was_looked_up) {
  const route::table t = sample();
  BOOST_TEST(resolved(t, "nope.localhost") == "unknown_service nope");
  BOOST_TEST(resolved(t, "NOPE.localhost:3456") == "unknown_service nope");
  BOOST_TEST(resolved(t, "x.y.nope.localhost") == "unknown_service nope");
  const route::resolution r = route::resolve(t, "nope.localhost", false);
  BOOST_TEST(r.target == nullptr);
}

BOOST_AUTO_TEST_CASE(foreign_host_on_an_ordinary_request) {
  // The DNS-rebinding defence: a name we do not serve gets 421, even if its first label is a route.
  const route::table t = sample();
  BOOST_TEST(resolved(t, "api.example.com") == "foreign_host api.example.com");
  BOOST_TEST(resolved(t, "API.Evil.Example.:8080") == "foreign_host api.evil.example");
  BOOST_TEST(resolved(t, "api.localhost.evil.example") == "foreign_host api.localhost.evil.example");
  BOOST_TEST(resolved(t, "api.notlocalhost") == "foreign_host api.notlocalhost");
  BOOST_TEST(resolved(t, "apilocalhost") == "foreign_host apilocalhost");
  BOOST_TEST(resolved(t, "api") == "foreign_host api");
  BOOST_TEST(resolved(t, "10.0.0.5:8080") == "foreign_host 10.0.0.5");
  BOOST_TEST(resolved(t, ".localhost") == "foreign_host .localhost");
}

BOOST_AUTO_TEST_CASE(proxy_form_routes_other_hosts_by_their_first_label) {
  const route::table t = sample();
  BOOST_TEST(resolved(t, "api.example.com", true) == "service api 8080");
  BOOST_TEST(resolved(t, "API.Example.Com:443", true) == "service api 8080");
  BOOST_TEST(resolved(t, "web.example.com.", true) == "service web 5173");
  BOOST_TEST(resolved(t, "api", true) == "service api 8080");
  BOOST_TEST(resolved(t, "nope.example.com:443", true) == "unknown_service nope");
  // Dev-domain names keep their own rule in proxy form.
  BOOST_TEST(resolved(t, "tenant1.app.localhost", true) == "service app 3000");
  BOOST_TEST(resolved(t, "tenant1.shop.localhost:3456", true) == "service tenant1.shop 4001");
}

// --- normalize_host and upstream_text ---

BOOST_AUTO_TEST_CASE(normalize_host_cases) {
  BOOST_TEST(route::normalize_host("API.localhost.:3456") == "api.localhost");
  BOOST_TEST(route::normalize_host("api.localhost") == "api.localhost");
  BOOST_TEST(route::normalize_host("Api.Localhost:80") == "api.localhost");
  BOOST_TEST(route::normalize_host("api.localhost.") == "api.localhost");
  BOOST_TEST(route::normalize_host("EXAMPLE.COM") == "example.com");
  BOOST_TEST(route::normalize_host("127.0.0.1:3456") == "127.0.0.1");
  BOOST_TEST(route::normalize_host("[::1]:3456") == "[::1]");
  BOOST_TEST(route::normalize_host("[::1]") == "[::1]");
  BOOST_TEST(route::normalize_host("[2001:DB8::1]:443") == "[2001:db8::1]");
  BOOST_TEST(route::normalize_host("::1") == "::1");  // a bare IPv6 address keeps its colons
  BOOST_TEST(route::normalize_host("localhost:") == "localhost");
  BOOST_TEST(route::normalize_host("") == "");
}

BOOST_AUTO_TEST_CASE(upstream_text_cases) {
  BOOST_TEST(make("api", 8080).upstream_text() == "127.0.0.1:8080");
  BOOST_TEST(make("api", 8080, route::source::config, "127.0.0.1").upstream_text() == "127.0.0.1:8080");
  BOOST_TEST(make("api", 443, route::source::hub, "192.168.1.20").upstream_text() == "192.168.1.20:443");
  BOOST_TEST(make("api", 5173, route::source::reach, "::1").upstream_text() == "[::1]:5173");
  BOOST_TEST(make("api", 1, route::source::reach, "fd00::2").upstream_text() == "[fd00::2]:1");
}

BOOST_AUTO_TEST_SUITE_END()
