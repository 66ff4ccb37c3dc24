// Restart-holding (product.md, "Restarting upstreams"): requests, bodies, a WebSocket upgrade and a
// CONNECT that arrive while a dev server restarts all reach it once it is back, none sees a 502; a
// service that stays down gets the 502 after the hold (JSON, or the self-reloading page for a browser);
// hold 0, a service off for longer than the rule and a route whose process died are not held (a request
// held when its process dies gets the 404 then). Real
// upstream (restart_upstream.hpp) and the real binary, both io backends; one proxy per case.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/hold_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/proxy_rss.hpp"
#include "http/restart_upstream.hpp"
#include "http/upstreams.hpp"
#include "support/output_text.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

// Named, not anonymous: the cases' lambdas capture these types (GCC's -Wsubobject-linkage).
namespace hold_helpers {

constexpr std::string_view refused_json =
    R"({"error":"Bad Gateway: the service is not responding.","service":"app"})";

// A request answered, so that the upstream counts as one that answered recently.
void warm_up(unsigned port, const std::string& host) {
  const auto r = round_trip(port, request("GET", host, "/warm"));
  BOOST_REQUIRE_MESSAGE(r.response, r.error);
  BOOST_REQUIRE_EQUAL(r.response->status, 200);
}

}  // namespace hold_helpers

using namespace hold_helpers;

BOOST_AUTO_TEST_SUITE(hold)

BOOST_DATA_TEST_CASE(requests_arriving_while_the_upstream_restarts_are_held_and_all_succeed,
                     bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io,
                       proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}}, .extra = "", .args = {}});
  const unsigned port = proxy.port();
  warm_up(port, "app.localhost");
  up.stop();  // the dev server restarts: its port refuses until start() below

  constexpr int n = 200;
  std::vector<outcome> results(n);
  std::vector<std::string> expected(n);
  std::atomic<int> sent{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      const std::string target = "/get/" + std::to_string(i);
      bytes = request("GET", "app.localhost", target);
      expected[i] = "GET " + target + " ";
    } else {
      // Bodies from a few bytes to 64 KiB, each unique, so that a mix-up or a cut shows.
      std::string body = "body-" + std::to_string(i) + ":";
      body += std::string(static_cast<std::size_t>(i % 5) * 16 * 1024, static_cast<char>('a' + i % 26));
      const std::string target = "/post/" + std::to_string(i);
      bytes = request("POST", "app.localhost", target, "", body);
      expected[i] = "POST " + target + " " + body;
    }
    clients.emplace_back([&, i, bytes] { results[i] = exchange_once(port, bytes, 30s, &sent); });
  }
  // A hot-reload client reconnecting its WebSocket, and a client tunnelling through CONNECT.
  std::string websocket_error = "no answer";
  clients.emplace_back([&] {
    raw_client c(port);
    const bool ok =
        c.ok() && c.send(
                      "GET /hmr HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: "
                      "websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
                      "dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    ++sent;
    if (!ok) return;
    const auto r = c.read_response(30s);
    if (!r || r->status != 101) {
      websocket_error = r ? "status " + std::to_string(r->status) + " " + r->body : c.error();
      return;
    }
    if (!c.send("reload-ping") || !c.read_until("reload-ping", 10s)) {
      websocket_error = "no echo: " + c.error();
      return;
    }
    websocket_error.clear();
  });
  std::string tunnel_error = "no answer";
  clients.emplace_back([&] {
    raw_client c(port);
    const bool ok = c.ok() && c.send("CONNECT app.localhost:443 HTTP/1.1\r\nHost: app.localhost:443\r\n\r\n");
    ++sent;
    if (!ok) return;
    const auto r = c.read_response(30s, false, true);
    if (!r || r->status != 200) {
      tunnel_error = r ? "status " + std::to_string(r->status) + " " + r->body : c.error();
      return;
    }
    if (!c.send(request("GET", "app.localhost", "/through-tunnel"))) return;
    const auto inner = c.read_response(10s);
    if (!inner || inner->body != "GET /through-tunnel ") {
      tunnel_error = inner ? "tunnelled answer: " + inner->body : c.error();
      return;
    }
    tunnel_error.clear();
  });

  const auto until = std::chrono::steady_clock::now() + 20s;
  while (sent.load() < n + 2 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  BOOST_TEST(sent.load() == n + 2);
  BOOST_TEST(
      log_shows(proxy, "app: 127.0.0.1:" + std::to_string(up.port()) + " refused the connection; holding"));
  std::this_thread::sleep_for(2s);  // the restart's downtime (the scenario, not a synchronisation)
  up.start();
  for (std::thread& t : clients) t.join();

  int ok = 0;
  for (int i = 0; i < n; ++i) {
    BOOST_TEST_CONTEXT("request " << i) {
      BOOST_TEST(results[i].status == 200, results[i].error << " " << results[i].body.substr(0, 200));
      BOOST_TEST((results[i].body == expected[i]), "body of " << results[i].body.size() << " bytes differs");
      if (results[i].status == 200 && results[i].body == expected[i]) ++ok;
    }
  }
  BOOST_TEST(ok == n);
  BOOST_TEST(websocket_error.empty(), websocket_error);
  BOOST_TEST(tunnel_error.empty(), tunnel_error);

  const auto log = proxy.stop_and_take_log(20s);
  BOOST_REQUIRE(log);
  // One line when holding started and one when the service answered, not one per request; no 502.
  BOOST_TEST(
      cproxy::test::count_of(*log, "refused the connection; holding its requests for up to 10 s") == 1u,
      *log);
  BOOST_TEST(cproxy::test::count_of(
                 *log, "app: 127.0.0.1:" + std::to_string(up.port()) + " answers again after ") == 1u,
             *log);
  BOOST_TEST(cproxy::test::count_of(*log, " 502 ") == 0u);
  BOOST_TEST(cproxy::test::count_of(*log, "502 app") == 0u);
}

BOOST_DATA_TEST_CASE(a_service_that_stays_down_gets_the_502_after_the_hold_json_or_a_reloading_page,
                     bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io, proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}},
                                        .extra = R"("timeouts": {"hold": 2})",
                                        .args = {}});
  const unsigned port = proxy.port();
  warm_up(port, "app.localhost");
  up.stop();

  outcome json, html;
  std::thread a([&] {
    json = exchange_once(port, request("GET", "app.localhost", "/", "Accept: */*\r\n"), 20s, nullptr);
  });
  std::thread b([&] {
    html =
        exchange_once(port, request("GET", "app.localhost", "/", std::string(browser_accept)), 20s, nullptr);
  });
  a.join();
  b.join();
  BOOST_TEST(json.status == 502, json.error);
  BOOST_TEST(json.content_type == "application/json");
  BOOST_TEST(json.body == refused_json);
  BOOST_TEST(html.status == 502, html.error);
  BOOST_TEST(html.content_type == "text/html; charset=utf-8");
  BOOST_TEST(html.body.find("<meta http-equiv=\"refresh\" content=\"1\">") != std::string::npos, html.body);
  BOOST_TEST(
      html.body.find("<code>app</code>: Bad Gateway: the service is not responding.") != std::string::npos,
      html.body);
  BOOST_TEST(html.body.find("http://") == std::string::npos, "no outside resources: " << html.body);

  // The service comes back: the page's next reload shows the app.
  up.start();
  const auto back =
      exchange_once(port, request("GET", "app.localhost", "/", std::string(browser_accept)), 10s, nullptr);
  BOOST_TEST(back.status == 200);
  BOOST_TEST(back.body == "GET / ");

  const auto log = proxy.stop_and_take_log(20s);
  BOOST_REQUIRE(log);
  BOOST_TEST(cproxy::test::count_of(*log, "refused the connection; holding its requests for up to 2 s") == 1u,
             *log);
  BOOST_TEST(cproxy::test::count_of(*log, "did not answer within ") == 1u, *log);
  BOOST_TEST(cproxy::test::count_of(*log, "502 app:") == 0u, *log);
}

BOOST_DATA_TEST_CASE(hold_0_answers_the_502_at_once, bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io, proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}},
                                        .extra = R"("timeouts": {"hold": 0})",
                                        .args = {}});
  warm_up(proxy.port(), "app.localhost");
  up.stop();
  // Shorter than the default hold: a held request could not be answered within it.
  const auto r = exchange_once(proxy.port(), request("GET", "app.localhost", "/"), 5s, nullptr);
  BOOST_TEST(r.status == 502, r.error);
  BOOST_TEST(r.body == refused_json);
  const auto log = proxy.stop_and_take_log(20s);
  BOOST_REQUIRE(log);
  BOOST_TEST(cproxy::test::count_of(*log, "holding") == 0u, *log);
  BOOST_TEST(cproxy::test::count_of(
                 *log, "502 app: 127.0.0.1:" + std::to_string(up.port()) + " refused the connection") == 1u,
             *log);
}

BOOST_DATA_TEST_CASE(a_service_off_for_longer_than_the_rule_or_never_up_is_not_held, bdata::make(backends),
                     io) {
  restart_upstream up;
  const closed_port never;
  // The rule's 5 minutes and 30 s as 1.5 s each, so that the test can outwait them.
  ::setenv("CONNECT_PROXY_HOLD_WINDOWS", "1500,1500", 1);
  proxy_instance proxy(
      io, proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}, {"never", never.port(), "127.0.0.1"}},
                       .extra = "",
                       .args = {}});
  ::unsetenv("CONNECT_PROXY_HOLD_WINDOWS");
  warm_up(proxy.port(), "app.localhost");
  up.stop();
  std::this_thread::sleep_for(2500ms);  // both windows pass (the scenario, not a synchronisation)
  for (const std::string name : {"app", "never"}) {
    BOOST_TEST_CONTEXT(name) {
      const auto r = exchange_once(proxy.port(), request("GET", name + ".localhost", "/"), 5s, nullptr);
      BOOST_TEST(r.status == 502, r.error);
      BOOST_TEST(r.body ==
                 R"({"error":"Bad Gateway: the service is not responding.","service":")" + name + "\"}");
    }
  }
  const auto log = proxy.stop_and_take_log(20s);
  BOOST_REQUIRE(log);
  BOOST_TEST(cproxy::test::count_of(*log, "holding") == 0u, *log);
}

BOOST_DATA_TEST_CASE(a_route_whose_process_died_is_not_held, bdata::make(backends), io) {
  restart_upstream up;
  // A hold far longer than the test's deadline: a request held on for the dead route would miss it.
  proxy_instance proxy(io, proxy_config{.routes = {}, .extra = R"("timeouts": {"hold": 60})", .args = {}});
  const pid_t service = ::fork();
  BOOST_REQUIRE(service >= 0);
  if (service == 0) {
    ::pause();  // stands for the dev server's process until the test kills it
    ::_exit(0);
  }
  {
    std::ofstream(proxy.home() + "/active-routes.json.tmp")
        << R"({"version": 1, "routes": [{"serviceName": "svc", "localPort": )" << up.port() << R"(, "pid": )"
        << service << "}]}\n";
  }
  std::filesystem::rename(proxy.home() + "/active-routes.json.tmp", proxy.home() + "/active-routes.json");
  // The route is live and answers.
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (status != 200 && std::chrono::steady_clock::now() < until) {
    status = exchange_once(proxy.port(), request("GET", "svc.localhost", "/"), 5s, nullptr).status;
    if (status != 200) std::this_thread::sleep_for(20ms);
  }
  BOOST_REQUIRE_EQUAL(status, 200);
  up.stop();

  // A request held while the process lives ends once it is known dead, long before the hold would.
  outcome held;
  std::thread t(
      [&] { held = exchange_once(proxy.port(), request("GET", "svc.localhost", "/held"), 15s, nullptr); });
  const bool holding =
      log_shows(proxy, "svc: 127.0.0.1:" + std::to_string(up.port()) + " refused the connection; holding");
  ::kill(service, SIGKILL);
  ::waitpid(service, nullptr, 0);
  t.join();
  BOOST_TEST(holding);
  // Once known dead, the held request gets what a new one gets: the 404, not the 502 of a hold run out.
  BOOST_TEST(held.status == 404, held.error << held.body);
  BOOST_TEST(held.body == R"({"error":"Service not found","subdomain":"svc","available":[],)"
                          R"("hint":"No services yet. Add one with: connect reach <service>"})");
  BOOST_TEST(log_shows(proxy, "svc: 127.0.0.1:" + std::to_string(up.port()) + " was unrouted after "),
             proxy.output());
  // Then the route is gone: 404, not held.
  const auto r = exchange_once(proxy.port(), request("GET", "svc.localhost", "/"), 5s, nullptr);
  BOOST_TEST(r.status == 404, r.error << r.body);
}

// Holding costs a frame and a timer per request: 1000 held at once leave the proxy's memory bounded.
BOOST_DATA_TEST_CASE(a_thousand_held_requests_keep_memory_bounded, bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io, proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}},
                                        .extra = R"("timeouts": {"hold": 30})",
                                        .args = {}});
  warm_up(proxy.port(), "app.localhost");
  up.stop();
  const long before = static_cast<long>(proxy_rss_kib(proxy.home()));
  BOOST_REQUIRE(before > 0);
  constexpr int n = 1000;
  std::vector<raw_client> clients;
  clients.reserve(n);
  for (int i = 0; i < n; ++i) {
    clients.emplace_back(proxy.port());
    BOOST_REQUIRE_MESSAGE(clients.back().ok(), clients.back().error());
    BOOST_REQUIRE(clients.back().send(request("GET", "app.localhost", "/many/" + std::to_string(i))));
  }
  std::this_thread::sleep_for(1s);  // let the proxy read them all (the scenario, not a synchronisation)
  const long during = static_cast<long>(proxy_rss_kib(proxy.home()));
  up.start();
  int ok = 0;
  for (raw_client& c : clients) {
    const auto r = c.read_final_response(20s);
    if (r && r->status == 200) ++ok;
  }
  BOOST_TEST(ok == n);
  // 1000 held requests: their frames, buffers and timers. Well under 64 MiB (about 64 KiB each).
  BOOST_TEST(during - before < 64L * 1024, "RSS grew from " << before << " KiB to " << during << " KiB");
  BOOST_TEST_MESSAGE("RSS with " << n << " held requests: " << before << " KiB -> " << during << " KiB");
}

// The client of a held request is watched for a hang-up, but its body is not read into the proxy while
// it waits: the rest stays in the kernel, so the proxy's memory does not grow with the bodies it holds.
// 64 uploads of 1 MiB (the largest body that is held) add well under 1 MiB each.
BOOST_DATA_TEST_CASE(held_uploads_stay_in_the_kernel_not_in_the_proxy, bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io, proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}},
                                        .extra = R"("timeouts": {"hold": 30})",
                                        .args = {}});
  warm_up(proxy.port(), "app.localhost");
  up.stop();
  const long before = static_cast<long>(proxy_rss_kib(proxy.home()));
  BOOST_REQUIRE(before > 0);
  constexpr int n = 64;
  constexpr std::size_t body_size = 1024 * 1024;
  const std::string body(body_size, 'b');
  std::vector<raw_client> clients;
  clients.reserve(n);
  for (int i = 0; i < n; ++i) {
    clients.emplace_back(proxy.port());
    BOOST_REQUIRE_MESSAGE(clients.back().ok(), clients.back().error());
    BOOST_REQUIRE(clients.back().send(request("POST", "app.localhost", "/upload/" + std::to_string(i),
                                              "Content-Length: " + std::to_string(body_size) + "\r\n")));
    // As much of the body as the sockets take: the rest follows once the request is released.
    (void)clients.back().send(body, 500ms);
  }
  std::this_thread::sleep_for(1s);  // let the proxy read what it would (the scenario, not a synchronisation)
  const long during = static_cast<long>(proxy_rss_kib(proxy.home()));
  // Measured: 6-10 MiB (each connection's head buffer, one read beyond it, frames); reading the bodies
  // in took 74 MiB.
  BOOST_TEST(during - before < 32L * 1024, "RSS grew from " << before << " KiB to " << during << " KiB");
  BOOST_TEST_MESSAGE("RSS with " << n << " held 1 MiB uploads: " << before << " KiB -> " << during << " KiB");
}

BOOST_AUTO_TEST_SUITE_END()
