// The own page's request inspector in a real headless Chromium, driven over the DevTools protocol
// (support/devtools_browser.hpp): the page is open, requests through the proxy appear as rows with their
// timing bars (live, over /_connect/events), a click opens one with the headers and bodies the upstream
// saw, Replay sends it again (the upstream gets the same request, a new row appears), and a screenshot
// of the page with the details open is kept beside the test binary (inspector-page-replay-IO.png).
// Skipped without Chromium. Both io backends.
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <iostream>

#include "http/client_helpers.hpp"
#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "support/artifacts.hpp"
#include "support/devtools_browser.hpp"
#include "support/temp_dir.hpp"

using namespace cproxy::http_test;
using cproxy::test::devtools_browser;
using cproxy::test::js_string;
namespace bdata = boost::unit_test::data;
namespace json = boost::json;

namespace {

struct page_env {
  scripted_upstream api{"api"};
  proxy_pool proxies{proxy_config{.routes = {{"api", api.port(), ""}}, .extra = {}, .args = {}}};
};

boost::test_tools::assertion_result chromium_installed(boost::unit_test::test_unit_id) {
  if (!devtools_browser::chromium_path().empty()) return true;
  std::cerr << "*** SKIPPED inspector_page: no Chromium found (the Debian package chromium)\n";
  boost::test_tools::assertion_result skip(false);
  skip.message() << "no Chromium found";
  return skip;
}

// The rows of a details table (#request-headers, #response-headers) as "name: value" lines.
std::vector<std::string> shown_headers(devtools_browser& b, const std::string& id) {
  const json::value v = b.evaluate("[...document.querySelectorAll('#" + id +
                                   " tr')].map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])");
  std::vector<std::string> out;
  for (const json::value& row : v.as_array())
    out.push_back(std::string(row.at(0).as_string()) + ": " + std::string(row.at(1).as_string()));
  return out;
}

std::string text_of(devtools_browser& b, const std::string& selector) {
  const json::value v = b.evaluate("(document.querySelector(" + js_string(selector) +
                                   ") || {textContent: '(missing)'}).textContent");
  return std::string(v.as_string());
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(inspector_page, with_env<page_env>,
                         *shared_env<page_env>() * boost::unit_test::precondition(chromium_installed))

BOOST_DATA_TEST_CASE(a_row_opens_its_details_and_replay_reaches_the_upstream, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const unsigned port = proxy.port();
  const std::string p = std::to_string(port);
  const auto cleared = round_trip(
      port, request("DELETE", "localhost:" + p, "/_connect/requests", "Content-Type: application/json\r\n"));
  BOOST_REQUIRE(cleared.response && cleared.response->status == 200);

  cproxy::test::temp_dir folder("connect-inspector-page");
  devtools_browser browser({.user_data_dir = folder.file("profile"), .home = folder.path, .extra_args = {}});
  browser.navigate("http://localhost:" + p + "/");
  // The event stream runs: what finishes from now on shows up live.
  BOOST_REQUIRE_MESSAGE(browser.wait_until("document.body.dataset.events === 'open'", 15s),
                        browser.log_tail());
  BOOST_TEST(browser.evaluate("document.querySelectorAll('#rows tr').length").to_number<int>() == 0);

  const std::size_t earlier = env.api.server().requests_for("/page/replay-me").size();
  const std::string body = R"({"page":"replay","n":7})";
  const auto posted =
      round_trip(port, request("POST", "api.localhost:" + p, "/page/replay-me?x=1",
                               "Content-Type: application/json\r\nX-Page-Test: row-7\r\n", body));
  BOOST_REQUIRE(posted.response && posted.response->status == 200);
  const auto curl =
      run_program({"curl", "-sS", "--max-time", "20", "-o", "/dev/null", "--resolve",
                   "api.localhost:" + p + ":127.0.0.1", "http://api.localhost:" + p + "/page/one"},
                  30s);
  BOOST_REQUIRE_EQUAL(curl.status, 0);

  const std::string post_url = "http://api.localhost:" + p + "/page/replay-me?x=1";
  const std::string row_with =
      "[...document.querySelectorAll('#rows tr')].find(tr => tr.textContent.includes(";
  BOOST_REQUIRE_MESSAGE(
      browser.wait_until(row_with + js_string(post_url) + ")) && " + row_with +
                             js_string("http://api.localhost:" + p + "/page/one") + "))",
                         10s),
      "rows: " << json::serialize(browser.evaluate("document.getElementById('rows').innerText")));
  BOOST_TEST(browser.evaluate("document.querySelectorAll('#rows tr').length").to_number<int>() == 2);
  BOOST_TEST(browser.evaluate("document.querySelectorAll('#rows tr .bar span').length").to_number<int>() ==
             6);

  // Open the POST's row: the details show the request as the upstream got it, and its answer.
  const std::string id =
      std::string(browser.evaluate(row_with + js_string(post_url) + ")).dataset.id").as_string());
  browser.evaluate("document.querySelector('#rows tr[data-id=\"" + id + "\"]').click()");
  BOOST_REQUIRE(browser.wait_until("document.getElementById('request-body') !== null", 10s));
  BOOST_TEST(text_of(browser, "#detail h3") == "POST " + post_url + " → 200");
  const auto all_seen = env.api.server().requests_for("/page/replay-me");
  BOOST_REQUIRE_EQUAL(all_seen.size(), earlier + 1);
  const recorded_request& seen = all_seen.back();
  std::vector<std::string> forwarded;
  for (const field& f : seen.head.fields) forwarded.push_back(f.name + ": " + f.value);
  BOOST_TEST(shown_headers(browser, "request-headers") == forwarded, boost::test_tools::per_element());
  BOOST_TEST(text_of(browser, "#request-body") == "{\n  \"page\": \"replay\",\n  \"n\": 7\n}");
  // The upstream's default answer is the request head it received.
  BOOST_TEST(text_of(browser, "#response-body") == seen.head.raw);
  const auto response_headers = shown_headers(browser, "response-headers");
  BOOST_TEST((std::find(response_headers.begin(), response_headers.end(), "X-Upstream: api") !=
              response_headers.end()));

  // Replay: the same request reaches the upstream again, and the replay is a row of its own.
  browser.evaluate("document.getElementById('replay').click()");
  const std::string replay_open =
      "document.querySelector('#rows tr.open') !== null && "
      "document.getElementById('replay-state').textContent === ' replay of request " +
      id + "'";
  BOOST_REQUIRE_MESSAGE(
      browser.wait_until(replay_open, 15s),
      "state: " << text_of(browser, "#replay-state") << " | detail: " << text_of(browser, "#detail h3")
                << " | rows: "
                << json::serialize(browser.evaluate("document.getElementById('rows').innerText")));
  // The page opened the replay's details: its row is the open one.
  const std::string new_id =
      std::string(browser.evaluate("document.querySelector('#rows tr.open').dataset.id").as_string());
  BOOST_TEST(new_id != id);
  BOOST_TEST(
      browser.wait_until("document.querySelector('#rows tr[data-id=\"" + new_id + "\"]') !== null", 10s));
  BOOST_TEST(browser.evaluate("document.querySelectorAll('#rows tr').length").to_number<int>() == 3);
  const auto after = env.api.server().requests_for("/page/replay-me");
  BOOST_REQUIRE_EQUAL(after.size(), earlier + 2);
  BOOST_TEST(after.back().method == "POST");
  BOOST_TEST(after.back().target == "/page/replay-me?x=1");
  BOOST_TEST(after.back().body == body);
  BOOST_TEST(after.back().head.raw == seen.head.raw);
  BOOST_TEST(text_of(browser, "#detail h3") == "POST " + post_url + " → 200");
  BOOST_TEST(text_of(browser, "#request-body") == "{\n  \"page\": \"replay\",\n  \"n\": 7\n}");

  const std::string shot =
      (cproxy::test_support::artifact_dir() / ("inspector-page-replay-" + std::string(io) + ".png")).string();
  std::filesystem::remove(shot);
  browser.screenshot(shot);
  BOOST_TEST(std::filesystem::file_size(shot) > 1000u);
  BOOST_TEST_MESSAGE("screenshot: " << shot);
}

BOOST_AUTO_TEST_SUITE_END()
