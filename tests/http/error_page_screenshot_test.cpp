// The error pages as a person sees them: headless Chromium navigates to an unknown name (the 404 page,
// routes as links) and to a route whose service is down (the 502 page), and screenshots each; the PNGs
// are kept as test artifacts beside the test binary (error-page-404-IO.png, error-page-502-IO.png, e.g.
// build/tests/). Asserted: Chromium ran, and each file is a PNG big enough to show a page, not a blank
// one, and the proxy logged the navigation with that status. Skipped, loudly, without Chromium. Both io
// backends.
#include <unistd.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "support/artifacts.hpp"

using namespace cproxy::http_test;
namespace bdata = boost::unit_test::data;

namespace {

struct shots_env {
  scripted_upstream api{"api"};
  closed_port dead_port;
  // hold 0: the 502 page at once (a held navigation would wait for the service instead).
  proxy_pool proxies{
      proxy_config{.routes = {{"api", api.port(), ""}, {"dead", dead_port.port(), "127.0.0.1"}},
                   .extra = R"("timeouts": {"hold": 0})",
                   .args = {}}};
};

std::string chromium() {
  if (const char* chosen = ::getenv("CONNECT_TEST_CHROMIUM"); chosen && *chosen) return chosen;
  for (const char* p : {"/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

boost::test_tools::assertion_result chromium_installed(boost::unit_test::test_unit_id) {
  if (!chromium().empty()) return true;
  std::cerr << "*** SKIPPED error_page_screenshots: no Chromium found\n";
  boost::test_tools::assertion_result skip(false);
  skip.message() << "no Chromium found";
  return skip;
}

// The file's first bytes and size: a PNG signature, and more than a blank window compresses to (a white
// 1280x800 PNG is under 5 KiB; a page with text and a table is tens of KiB).
bool looks_like_a_page_png(const std::string& path, std::uintmax_t* size) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, sizeof sig);
  *size = std::filesystem::exists(path) ? std::filesystem::file_size(path) : 0;
  return in.gcount() == 8 && std::string_view(sig, 8) == "\x89PNG\r\n\x1a\n" && *size > 8 * 1024;
}

bool logged(proxy_instance& proxy, const std::string& needle) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    if (proxy.log_text().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(error_page_screenshots, with_env<shots_env>,
                         *shared_env<shots_env>() * boost::unit_test::precondition(chromium_installed))

BOOST_DATA_TEST_CASE(the_404_and_502_pages_are_screenshot_as_artifacts, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string p = std::to_string(proxy.port());
  const std::string profile = proxy.home() + "/chromium-profile";
  for (const auto& [status, host] : {std::pair<std::string, std::string>{"404", "nosuch"}, {"502", "dead"}}) {
    BOOST_TEST_CONTEXT(status) {
      const std::string shot =
          (cproxy::test_support::artifact_dir() / ("error-page-" + status + "-" + std::string(io) + ".png"))
              .string();
      std::filesystem::remove(shot);
      // --timeout bounds the load: the 502 page reloads itself every second.
      const auto run = run_program(
          {chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server",
           "--user-data-dir=" + profile, "--timeout=3000", "--window-size=1280,800", "--screenshot=" + shot,
           "http://" + host + ".localhost:" + p + "/"},
          60s);
      BOOST_TEST(run.status == 0, run.err.substr(0, 2000));
      // The page in the picture is the proxy's: its access line shows Chromium's navigation and the status
      // (a Chromium error page, e.g. a refused connection, would make a PNG of the same kind).
      BOOST_TEST(logged(proxy, "GET " + host + ".localhost:" + p + "/ " + status + " "), proxy.output());
      std::uintmax_t size = 0;
      BOOST_TEST(looks_like_a_page_png(shot, &size), shot << ": " << size << " bytes");
      BOOST_TEST_MESSAGE("screenshot of the " << status << " page: " << shot << " (" << size << " bytes)");
      std::cout << "screenshot of the " << status << " page: " << shot << "\n";
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
