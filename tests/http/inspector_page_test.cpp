// The own page's request inspector in headless Chromium: after requests through the proxy the page's DOM
// holds their rows (with timing bars) as soon as it loads; a screenshot of the page, linked to one request
// (#request=ID opens it), is kept as a test artifact (inspector-page-IO.png in the working folder). The
// opened details are not asserted: Chromium dumps the DOM at the load event, before that fetch returns.
// Skipped without Chromium. Both io backends.
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <iostream>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

struct page_env {
  scripted_upstream api{"api"};
  proxy_pool proxies{proxy_config{.routes = {{"api", api.port(), ""}}, .extra = {}, .args = {}}};
};

std::string chromium() {
  if (const char* chosen = ::getenv("CONNECT_TEST_CHROMIUM"); chosen && *chosen) return chosen;
  for (const char* p : {"/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

boost::test_tools::assertion_result chromium_installed(boost::unit_test::test_unit_id) {
  if (!chromium().empty()) return true;
  std::cerr << "*** SKIPPED inspector_page: no Chromium found\n";
  boost::test_tools::assertion_result skip(false);
  skip.message() << "no Chromium found";
  return skip;
}

// Chromium's flags for a run as root without a display. --timeout bounds the load (--virtual-time-budget
// would never end: the page's event stream stays open).
std::vector<std::string> browser(const std::string& profile, const std::vector<std::string>& more) {
  std::vector<std::string> argv{chromium(),       "--headless",
                                "--no-sandbox",   "--disable-gpu",
                                "--no-first-run", "--user-data-dir=" + profile,
                                "--timeout=8000", "--window-size=1280,1000"};
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(inspector_page, with_env<page_env>,
                         *shared_env<page_env>() * boost::unit_test::precondition(chromium_installed))

BOOST_DATA_TEST_CASE(the_page_shows_live_rows_and_opens_one, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string p = std::to_string(port);
  const auto cleared = round_trip(
      port, request("DELETE", "localhost:" + p, "/_connect/requests", "Content-Type: application/json\r\n"));
  BOOST_REQUIRE(cleared.response && cleared.response->status == 200);
  for (const char* path : {"/page/one", "/page/two?x=1"})
    BOOST_REQUIRE(round_trip(port, request("GET", "api.localhost:" + p, path)).response);
  std::string listed;
  for (int i = 0; i < 100 && listed.find("/page/two") == std::string::npos; ++i) {
    listed = round_trip(port, request("GET", "localhost:" + p, "/_connect/requests")).response->body;
    std::this_thread::sleep_for(20ms);
  }
  const auto v = parse_json(listed);
  BOOST_REQUIRE(v);
  const std::string id = boost::json::serialize(v->at("requests").at(0).at("id"));

  const std::string profile = proxy.home() + "/chromium-profile";
  const std::string url = "http://localhost:" + p + "/";
  const auto dom = run_program(browser(profile, {"--dump-dom", url}), 60s);
  BOOST_REQUIRE_MESSAGE(dom.status == 0, dom.err.substr(0, 2000));
  BOOST_TEST(dom.out.find("http://api.localhost:" + p + "/page/one") != std::string::npos,
             dom.out.substr(0, 3000));
  BOOST_TEST(dom.out.find("http://api.localhost:" + p + "/page/two?x=1") != std::string::npos);
  BOOST_TEST(dom.out.find("class=\"bar\"") != std::string::npos);
  BOOST_TEST(dom.out.find("data-id=\"" + id + "\"") != std::string::npos);

  const std::string shot =
      (std::filesystem::current_path() / ("inspector-page-" + std::string(io) + ".png")).string();
  std::filesystem::remove(shot);
  const auto screenshot =
      run_program(browser(profile, {"--screenshot=" + shot, url + "#request=" + id}), 60s);
  BOOST_TEST(screenshot.status == 0);
  BOOST_TEST(std::filesystem::exists(shot));
  BOOST_TEST_MESSAGE("screenshot: " << shot);
}

BOOST_AUTO_TEST_SUITE_END()
