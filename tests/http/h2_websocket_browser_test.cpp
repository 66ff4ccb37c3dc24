// A hot-reload style wss:// socket in headless Chromium over HTTP/2 (product.md, HTTP/2; RFC 8441): a
// page served by `connect proxy start --https` over h2 opens a WebSocket to its own origin, sends
// messages and shows their echoes; the upstream saw an HTTP/1.1 Upgrade, and the proxy's access line for
// the socket ends in h2 (Chromium sent an extended CONNECT on the page's h2 connection, which it does
// when the server's SETTINGS offer ENABLE_CONNECT_PROTOCOL: no flag needed in Chromium 156). The CA is
// put into the browser's NSS database (~/.pki/nssdb under a temp HOME) as `connect proxy trust` does.
// A screenshot is kept beside the test binary (websocket-over-h2-IO.png). Also: an upstream's 103 Early
// Hints reaches Chromium over h2, which preloads what it names. Skipped without Chromium.
#include <atomic>
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <iostream>
#include <thread>

#include "http/proxy_fixture.hpp"
#include "http/run_program.hpp"
#include "http/upstreams.hpp"
#include "http/websocket_echo.hpp"
#include "support/artifacts.hpp"
#include "support/devtools_browser.hpp"
#include "support/output_text.hpp"
#include "support/temp_dir.hpp"

using namespace cproxy::http_test;
using cproxy::test::devtools_browser;
using cproxy::test::wait_for_text;
namespace bdata = boost::unit_test::data;

namespace {

// What the page sends, as a dev server's hot-reload client and server would talk.
constexpr const char* hot_reload_messages[] = {"update /src/app.js", "update /src/style.css", "full-reload"};

// The page: opens wss://<its own host>/__hmr-IO, sends the messages once open, lists each echo in
// #echoes, then closes the socket normally; data-closed holds the close code, data-page the page's
// own protocol (Navigation Timing's nextHopProtocol).
std::string page_html(const std::string& socket_path) {
  std::string sent;
  for (const char* m : hot_reload_messages) sent += std::string(sent.empty() ? "" : ", ") + "'" + m + "'";
  return "<!DOCTYPE html><html><head><title>hot reload over h2</title></head><body>"
         "<h1>hot reload socket over HTTP/2</h1><ul id=\"echoes\"></ul><script>\n"
         "const sent = [" +
         sent +
         "];\n"
         "const got = [];\n"
         "const ws = new WebSocket('wss://' + location.host + '" +
         socket_path +
         "');\n"
         "ws.onopen = () => sent.forEach(m => ws.send(m));\n"
         "ws.onmessage = e => {\n"
         "  got.push(e.data);\n"
         "  const li = document.createElement('li');\n"
         "  li.textContent = e.data;\n"
         "  document.getElementById('echoes').append(li);\n"
         "  if (got.length === sent.length) ws.close(1000, 'done');\n"
         "};\n"
         "ws.onerror = () => { document.body.dataset.error = 'error'; };\n"
         "ws.onclose = e => {\n"
         "  document.body.dataset.page = performance.getEntriesByType('navigation')[0].nextHopProtocol;\n"
         "  document.body.dataset.closed = String(e.code);\n"
         "};\n"
         "</script></body></html>\n";
}

// A page whose stylesheet its 103 Early Hints named: Chromium acts on a 103 over HTTP/2 only, and the
// stylesheet's Resource Timing entry then says it came from the hints.
constexpr const char* early_hints =
    "HTTP/1.1 103 Early Hints\r\nLink: </early.css>; rel=preload; as=style\r\n\r\n";
constexpr const char* hints_page =
    "<!DOCTYPE html><html><head><title>early hints over h2</title><link rel=\"stylesheet\" "
    "href=\"/early.css\">"
    "</head><body><h1>early hints over HTTP/2</h1><script>\n"
    "addEventListener('load', () => {\n"
    "  const css = performance.getEntriesByType('resource').find(e => e.name.endsWith('/early.css'));\n"
    "  document.body.dataset.css = css ? css.initiatorType + ' ' + css.nextHopProtocol : 'none';\n"
    "});\n"
    "</script></body></html>\n";

// Stylesheets served so far: the page of /hints-page-IO waits for the preload its 103 started.
std::atomic<int> stylesheets_served{0};

// The dev server: the page for /hmr-page-IO, a WebSocket echo for an upgrade, the page of /hints-page-IO
// after its 103, and its stylesheet.
void dev_server(upstream_conn& c) {
  for (int i = 0; i < 1000; ++i) {
    const auto req = c.read_request(60s);
    if (!req || !req->body_complete) return;
    if (req->head.has_token("upgrade", "websocket")) {
      serve_websocket_echo(c, *req);
      return;
    }
    if (req->target.find("/early.css") != std::string::npos) {
      if (!c.write("HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nCache-Control: "
                   "max-age=600\r\nContent-Length: 21\r\n\r\nh1 { color: #0a6e3a }"))
        return;
      ++stylesheets_served;
      continue;
    }
    if (req->target.find("/hints-page-") != std::string::npos) {
      // The hints, then the page once the preload they started has been served (a server that takes
      // time to render it), so a busy machine cannot let the page's own <link> win the race. Without
      // the hints the page goes after 5 s, and its stylesheet then comes from the <link>.
      const int served = stylesheets_served;
      if (!c.write(early_hints)) return;
      for (int wait = 0; wait < 500 && stylesheets_served == served; ++wait)
        std::this_thread::sleep_for(10ms);
      std::this_thread::sleep_for(50ms);  // the preload's response reaches the browser
      if (!c.write(std::string("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                               "Content-Length: " +
                               std::to_string(std::string_view(hints_page).size()) + "\r\n\r\n" +
                               hints_page)))
        return;
      continue;
    }
    const std::size_t at = req->target.find("/hmr-page-");
    const bool page = at != std::string::npos;
    const std::string body = page ? page_html("/__hmr-" + req->target.substr(at + 10)) : "not found\n";
    if (!c.write(std::string(page ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
                 "Content-Type: text/html; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\n\r\n" + body))
      return;
  }
}

struct ws_browser_env {
  upstream_server app{"app", dev_server};
  proxy_pool proxies{proxy_config{.routes = {{"app", app.port(), ""}}, .extra = {}, .args = {"--https"}}};
};

boost::test_tools::assertion_result chromium_installed(boost::unit_test::test_unit_id) {
  if (!devtools_browser::chromium_path().empty()) return true;
  std::cerr << "*** SKIPPED websocket_over_h2_browser: no Chromium found (the Debian package chromium)\n";
  boost::test_tools::assertion_result skip(false);
  skip.message() << "no Chromium found";
  return skip;
}

// The proxy's CA as a trusted root ("C,,") in a new NSS database at <home>/.pki/nssdb, where Chromium
// looks first: what `connect proxy trust` does for a user whose browser has that folder.
void trust_ca(const std::string& home, const std::string& ca_file) {
  const std::string db = "sql:" + home + "/.pki/nssdb";
  std::filesystem::create_directories(home + "/.pki/nssdb");
  const auto made = run_program({"certutil", "-N", "-d", db, "--empty-password"}, 30s);
  BOOST_TEST_REQUIRE(made.status == 0, "certutil -N: " << made.out << made.err);
  const auto added = run_program(
      {"certutil", "-A", "-d", db, "-n", "connect-proxy test CA", "-t", "C,,", "-i", ca_file}, 30s);
  BOOST_TEST_REQUIRE(added.status == 0, "certutil -A: " << added.out << added.err);
}

// The access lines of `log` that name `path`.
std::vector<std::string> lines_naming(const std::string& log, const std::string& path) {
  std::vector<std::string> out;
  for (std::size_t at = log.find(path); at != std::string::npos; at = log.find(path, at + 1)) {
    const std::size_t start = log.rfind('\n', at) + 1;  // npos + 1 is 0: the first line
    const std::size_t end = log.find('\n', at);
    out.push_back(log.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    at = end;
  }
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(websocket_over_h2_browser, with_env<ws_browser_env>,
                         *shared_env<ws_browser_env>() * boost::unit_test::precondition(chromium_installed))

BOOST_DATA_TEST_CASE(a_wss_hot_reload_socket_echoes_over_h2_in_chromium, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "app.localhost:" + std::to_string(proxy.port());
  const std::string socket_path = std::string("/__hmr-") + io;

  cproxy::test::temp_dir folder("connect-ws-h2-browser");
  trust_ca(folder.path, proxy.home() + "/certs/ca.crt");
  devtools_browser browser({.user_data_dir = folder.file("profile"), .home = folder.path, .extra_args = {}});
  browser.navigate("https://" + authority + "/hmr-page-" + io);
  BOOST_REQUIRE_MESSAGE(browser.wait_until("document.body.dataset.closed !== undefined", 20s),
                        "the socket never closed; echoes: "
                            << browser.evaluate("document.getElementById('echoes').textContent") << "\n"
                            << browser.log_tail());

  // (a) Every message came back, in order, and the socket closed normally.
  const boost::json::value echoes =
      browser.evaluate("[...document.querySelectorAll('#echoes li')].map(li => li.textContent)");
  std::vector<std::string> got;
  for (const boost::json::value& e : echoes.as_array()) got.emplace_back(e.as_string());
  const std::vector<std::string> sent(std::begin(hot_reload_messages), std::end(hot_reload_messages));
  BOOST_TEST(got == sent, boost::test_tools::per_element());
  BOOST_TEST(browser.evaluate("document.body.dataset.closed").as_string() == "1000");
  BOOST_TEST(browser.evaluate("document.body.dataset.error === undefined").as_bool());
  BOOST_TEST(browser.evaluate("document.body.dataset.page").as_string() == "h2");
  const std::string shot =
      (cproxy::test_support::artifact_dir() / ("websocket-over-h2-" + std::string(io) + ".png")).string();
  browser.screenshot(shot);
  BOOST_TEST_MESSAGE("screenshot: " << shot);

  // (b) The upstream got an HTTP/1.1 Upgrade: websocket for it.
  const auto upgrades = env.app.requests_for(socket_path);
  BOOST_REQUIRE_EQUAL(upgrades.size(), 1u);
  BOOST_TEST(upgrades[0].method == "GET");
  BOOST_TEST(upgrades[0].version == "HTTP/1.1");
  BOOST_TEST(upgrades[0].head.has_token("upgrade", "websocket"));
  BOOST_TEST(upgrades[0].head.has_token("connection", "upgrade"));

  // (c) The browser's socket went over h2: its one access line (written when the socket ends) says so;
  // had Chromium opened an HTTP/1.1 connection for it, that line would end in ms without h2.
  BOOST_TEST(wait_for_text([&] { return proxy.log_text(); }, socket_path + " 101 ", 10s, 50ms),
             proxy.output());
  const std::vector<std::string> lines = lines_naming(proxy.log_text(), socket_path);
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  BOOST_TEST(lines[0].find(" GET " + authority + socket_path + " 101 ") != std::string::npos, lines[0]);
  BOOST_TEST(lines[0].ends_with("ms h2"), lines[0]);
}

// An upstream's 103 Early Hints reaches Chromium over h2 (a non-final HEADERS frame) and it preloads the
// stylesheet the Link names: the stylesheet's Resource Timing entry says "early-hints". Were the 103
// dropped, the entry would say "link" (fetched from the page's own <link>). Chromium puts the preload in
// its HTTP cache, where the page's request finds it: without a max-age it fetches the stylesheet again.
// Chromium now and then leaves a 103 unused though the proxy sent it at once (seen on a fresh machine;
// nghttp gets the same 103 two seconds before its 200): so up to three attempts, each with a fresh
// profile and so a cold cache. A proxy that drops or delays the 103 fails all three.
BOOST_DATA_TEST_CASE(early_hints_reach_chromium_over_h2, bdata::make(backends), io) {
  proxy_instance& proxy = env.proxies.get(io);
  const std::string authority = "app.localhost:" + std::to_string(proxy.port());
  constexpr int attempts = 3;
  std::string seen;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    cproxy::test::temp_dir folder("connect-hints-h2-browser");
    trust_ca(folder.path, proxy.home() + "/certs/ca.crt");
    devtools_browser browser(
        {.user_data_dir = folder.file("profile"), .home = folder.path, .extra_args = {}});
    const std::size_t css_before = env.app.requests_for("/early.css").size();
    browser.navigate("https://" + authority + "/hints-page-" + io);
    BOOST_REQUIRE_MESSAGE(browser.wait_until("document.body.dataset.css !== undefined", 20s),
                          browser.log_tail());
    seen = browser.evaluate("document.body.dataset.css").as_string();
    if (seen == "early-hints h2") {
      // One fetch: the page's <link> took the preloaded response from the HTTP cache (hence its max-age).
      BOOST_TEST(env.app.requests_for("/early.css").size() == css_before + 1);
      return;
    }
    BOOST_TEST_MESSAGE("early hints, attempt " << attempt << " of " << attempts
                                               << ": the stylesheet came by '" << seen << "'");
  }
  BOOST_TEST(seen == "early-hints h2");
}

BOOST_AUTO_TEST_SUITE_END()
