// Restart-holding when things change under a held request (product.md, "Restarting upstreams"): its
// route removed from active-routes.json answers the 404 at once (JSON, or the HTML page for a browser),
// a route moved to another port is held there and reaches it, and a client that hangs up while held is
// dropped: its request never reaches the upstream once it is back. Real binary, both io backends.
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/hold_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/restart_upstream.hpp"
#include "support/output_text.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace hold_changes_helpers {

// active-routes.json replaced by rename, as the tools that write it do: static routes (no pid).
void write_routes(const proxy_instance& p, const std::vector<std::pair<std::string, unsigned>>& routes) {
  const std::string path = p.home() + "/active-routes.json";
  {
    std::ofstream out(path + ".tmp");
    out << R"({"version": 1, "routes": [)";
    for (std::size_t i = 0; i < routes.size(); ++i)
      out << (i ? ", " : "") << R"({"serviceName": ")" << routes[i].first << R"(", "localPort": )"
          << routes[i].second << "}";
    out << "]}\n";
  }
  std::filesystem::rename(path + ".tmp", path);
}

// Polls (bounded) until GET / for NAME.localhost answers `status`.
bool answers(unsigned port, const std::string& name, int status) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    const auto r = round_trip(port, request("GET", name + ".localhost", "/"));
    if (r.response && r.response->status == status) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace hold_changes_helpers

using namespace hold_changes_helpers;
using namespace hold_helpers;

BOOST_AUTO_TEST_SUITE(hold_changes)

BOOST_DATA_TEST_CASE(a_route_removed_while_its_requests_are_held_answers_404_at_once, bdata::make(backends),
                     io) {
  restart_upstream up, other;
  // A hold far longer than the test's deadlines: a request held on for the removed route would miss them.
  proxy_instance proxy(io, proxy_config{.routes = {}, .extra = R"("timeouts": {"hold": 60})", .args = {}});
  const unsigned port = proxy.port();
  write_routes(proxy, {{"svc", up.port()}, {"other", other.port()}});
  BOOST_REQUIRE(answers(port, "svc", 200));
  up.stop();

  outcome json, html;
  std::thread a([&] { json = exchange_once(port, request("GET", "svc.localhost", "/held"), 15s); });
  std::thread b([&] {
    html = exchange_once(port, request("GET", "svc.localhost", "/held", std::string(browser_accept)), 15s);
  });
  const bool holding =
      log_shows(proxy, "svc: 127.0.0.1:" + std::to_string(up.port()) + " refused the connection; holding");
  // Both requests are in (the log line comes with the first): give the second its moment to arrive.
  std::this_thread::sleep_for(300ms);
  write_routes(proxy, {{"other", other.port()}});
  a.join();
  b.join();
  BOOST_TEST(holding, proxy.output());
  BOOST_TEST(json.status == 404, json.error << json.body);
  BOOST_TEST(json.content_type == "application/json");
  BOOST_TEST(json.body == R"({"error":"Service not found","subdomain":"svc","available":["other"],)"
                          R"("hint":"Try: http://other.localhost:)" +
                              std::to_string(port) + "\"}");
  BOOST_TEST(html.status == 404, html.error << html.body);
  BOOST_TEST(html.content_type == "text/html; charset=utf-8");
  const std::string link = "http://other.localhost:" + std::to_string(port) + "/";
  BOOST_TEST(html.body.find("<a href=\"" + link + "\">") != std::string::npos, html.body);
  BOOST_TEST(log_shows(proxy, "svc: 127.0.0.1:" + std::to_string(up.port()) + " was unrouted after "),
             proxy.output());
  BOOST_TEST(up.served() == 1u);  // the warm-up only
}

BOOST_DATA_TEST_CASE(a_route_moved_to_another_port_while_held_is_held_there_and_answers,
                     bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io, proxy_config{.routes = {}, .extra = R"("timeouts": {"hold": 60})", .args = {}});
  const unsigned port = proxy.port();
  write_routes(proxy, {{"svc", up.port()}});
  BOOST_REQUIRE(answers(port, "svc", 200));
  up.stop();

  outcome held;
  std::thread t([&] { held = exchange_once(port, request("GET", "svc.localhost", "/moved"), 15s); });
  BOOST_TEST(log_shows(proxy, "svc: 127.0.0.1:" + std::to_string(up.port()) + " refused the connection"),
             proxy.output());
  // The dev server comes back on another port (a new `connect dev` run), and the routes file says so.
  restart_upstream moved;
  write_routes(proxy, {{"svc", moved.port()}});
  t.join();
  BOOST_TEST(held.status == 200, held.error << held.body);
  BOOST_TEST(held.body == "GET /moved ");
  BOOST_TEST(moved.served() == 1u);
}

BOOST_DATA_TEST_CASE(clients_that_hang_up_while_held_are_dropped_and_never_reach_the_upstream,
                     bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io, proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}},
                                        .extra = R"("timeouts": {"hold": 60})",
                                        .args = {}});
  const unsigned port = proxy.port();
  BOOST_REQUIRE(answers(port, "app", 200));
  const std::size_t warm = up.served();
  up.stop();

  constexpr int n = 50;
  std::vector<raw_client> clients;
  clients.reserve(n);
  for (int i = 0; i < n; ++i) {
    clients.emplace_back(port);
    BOOST_REQUIRE_MESSAGE(clients.back().ok(), clients.back().error());
    BOOST_REQUIRE(clients.back().send(request("GET", "app.localhost", "/left/" + std::to_string(i))));
  }
  BOOST_TEST(log_shows(proxy, "app: 127.0.0.1:" + std::to_string(up.port()) + " refused the connection"),
             proxy.output());
  for (raw_client& c : clients) c.close();
  // Every one of them noticed while the upstream is still down: the inspector lists each exchange as
  // "client gone", and the last one out ended the outage.
  const std::string left = "the clients of its held requests went away";
  BOOST_TEST(log_shows(proxy, left), proxy.output());
  std::size_t gone = 0;
  const std::string own = "localhost:" + std::to_string(port);
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (gone < static_cast<std::size_t>(n) && std::chrono::steady_clock::now() < until) {
    const auto listed = round_trip(port, request("GET", own, "/_connect/requests?route=app&limit=1000"));
    gone = listed.response ? cproxy::test::count_of(listed.response->body, R"("error":"client gone")") : 0;
    if (gone < static_cast<std::size_t>(n)) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(gone == static_cast<std::size_t>(n));

  // The upstream comes back: a new request goes through, and none of the 50 ever arrives.
  up.start();
  const auto fresh = round_trip(port, request("GET", "app.localhost", "/fresh"));
  BOOST_REQUIRE_MESSAGE(fresh.response, fresh.error);
  BOOST_TEST(fresh.response->status == 200);
  std::this_thread::sleep_for(500ms);  // room for a request wrongly still held to arrive (none must)
  BOOST_TEST(up.served() == warm + 1);

  const auto log = proxy.stop_and_take_log(20s);
  BOOST_REQUIRE(log);
  for (int i = 0; i < n; ++i) {
    BOOST_TEST_CONTEXT("client " << i) {
      BOOST_TEST(cproxy::test::count_of(*log, "GET app.localhost/left/" + std::to_string(i) + " 0 0B ") ==
                 1u);
    }
  }
  // Requests the proxy reads only after an earlier batch of held clients all left start a hold of their
  // own (the clients send and hang up without waiting): each hold ended because its clients went away.
  const std::size_t holds = cproxy::test::count_of(*log, "refused the connection; holding its requests");
  BOOST_TEST(holds >= 1u, *log);
  BOOST_TEST(cproxy::test::count_of(*log, left) == holds, *log);
  BOOST_TEST(cproxy::test::count_of(*log, "got 502") == 0u, *log);
  BOOST_TEST(cproxy::test::count_of(*log, " 502 ") == 0u, *log);
}

BOOST_AUTO_TEST_SUITE_END()
