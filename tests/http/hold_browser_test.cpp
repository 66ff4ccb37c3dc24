// A real browser during a dev server's restart (product.md, "Restarting upstreams"): headless Chromium
// navigates to http://app.localhost:PORT/ while the upstream refuses; the proxy holds the navigation and
// the browser ends on the app's page once the upstream is back, with no error page in between. Both io
// backends; skipped, loudly, without a Chromium (the Debian package chromium). How Chromium is driven:
// see tests/e2e/browser_test.cpp (--dump-dom prints the DOM after the load and exits).
#include <unistd.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <iostream>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/restart_upstream.hpp"
#include "http/run_program.hpp"
#include "support/temp_dir.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

const char* const chromium = "/usr/lib/chromium/chromium";

boost::test_tools::assertion_result chromium_installed(boost::unit_test::test_unit_id id) {
  if (::access(chromium, X_OK) == 0) return true;
  std::cerr << "*** SKIPPED " << boost::unit_test::framework::get(id, boost::unit_test::TUT_ANY).full_name()
            << ": no " << chromium << " (the Debian package chromium: toolchains/setup-deps.sh test)\n";
  boost::test_tools::assertion_result skip(false);
  skip.message() << "no Chromium";
  return skip;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hold_browser, *boost::unit_test::precondition(&chromium_installed))

BOOST_DATA_TEST_CASE(a_browser_navigating_during_a_restart_ends_on_the_apps_page, bdata::make(backends), io) {
  restart_upstream up;
  proxy_instance proxy(io,
                       proxy_config{.routes = {{"app", up.port(), "127.0.0.1"}}, .extra = "", .args = {}});
  const std::string url = "http://app.localhost:" + std::to_string(proxy.port()) + "/app-page-7f3";
  const auto warm = round_trip(proxy.port(), request("GET", "app.localhost", "/warm"));
  BOOST_REQUIRE(warm.response && warm.response->status == 200);
  up.stop();

  cproxy::test::temp_dir home("connect-hold-browser");
  program_result browser;
  std::thread t([&] {
    // HOME in a temp folder: the browser's profile and NSS files never land in the real home.
    browser = run_program(
        {"env", "HOME=" + home.path, chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
         "--no-proxy-server", "--user-data-dir=" + home.path + "/profile", "--dump-dom", url},
        60s);
  });
  // The navigation has reached the proxy and is held; the dev server comes back 2 s later.
  const auto until = std::chrono::steady_clock::now() + 30s;
  bool held = false;
  while (!held && std::chrono::steady_clock::now() < until) {
    held = proxy.log_text().find("app: 127.0.0.1:" + std::to_string(up.port()) +
                                 " refused the connection; holding") != std::string::npos;
    if (!held) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(held, proxy.output());
  std::this_thread::sleep_for(2s);  // the restart's downtime (the scenario, not a synchronisation)
  up.start();
  t.join();
  BOOST_TEST(browser.status == 0, browser.err);
  BOOST_TEST(browser.out.find("GET /app-page-7f3 ") != std::string::npos, "DOM:\n" << browser.out);
  BOOST_TEST(browser.out.find("not responding") == std::string::npos, "DOM:\n" << browser.out);
}

BOOST_AUTO_TEST_SUITE_END()
