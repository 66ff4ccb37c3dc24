// devtools_browser: headless Chromium driven over the Chrome DevTools Protocol (one WebSocket on loopback),
// for tests where a real browser must act on a page (click, wait for the page's own fetches, screenshot)
// rather than dump its DOM at the load event. Every wait has a deadline; Chromium is stopped by its pid.
#pragma once

#include <sys/types.h>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cproxy::test {

using namespace std::chrono_literals;

// A command the browser answered with an error, or a script that threw: the browser itself is fine.
struct devtools_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct devtools_options {
  // The profile folder (made if missing). Chromium's log goes to chromium.log in it.
  std::string user_data_dir;
  // HOME for Chromium, where it looks for its NSS database (~/.pki/nssdb, so a test can put a CA there);
  // user_data_dir when empty. The real home is never used.
  std::string home;
  // More flags, e.g. "--ignore-certificate-errors-spki-list=<hash>" for a test's own certificate.
  std::vector<std::string> extra_args;
  unsigned width = 1280, height = 1000;  // the page's viewport
  std::chrono::milliseconds start_deadline = 30s;
};

class devtools_browser {
 public:
  // CONNECT_TEST_CHROMIUM, else Debian's real binary (/usr/lib/chromium/chromium: its /usr/bin wrapper
  // adds flags), else chromium on PATH; empty when there is none.
  static std::string chromium_path();

  // Starts Chromium (--headless=new, --remote-debugging-port=0), reads its port from DevToolsActivePort,
  // connects to it and opens one page (about:blank) that the calls below drive. Throws std::runtime_error,
  // with the tail of Chromium's log, when that does not happen within options.start_deadline.
  explicit devtools_browser(devtools_options options);
  // Browser.close, then SIGTERM and at last SIGKILL to the process group it started, each bounded.
  ~devtools_browser();
  devtools_browser(const devtools_browser&) = delete;
  devtools_browser& operator=(const devtools_browser&) = delete;

  // One protocol command to the page; its result. Throws devtools_error when the browser answers with an
  // error, std::runtime_error when nothing comes back before the deadline (the connection is then dead).
  boost::json::object call(std::string_view method, boost::json::object params = {},
                           std::chrono::milliseconds deadline = 10s);
  // Loads `url` in the page and waits for its document to be complete. Throws when the load fails (the
  // browser's net::ERR_... text) or times out.
  void navigate(const std::string& url, std::chrono::milliseconds deadline = 20s);
  // Runtime.evaluate with awaitPromise: the expression's value as JSON (null for undefined). Throws
  // devtools_error with the exception's text when it throws or its promise rejects.
  boost::json::value evaluate(const std::string& expression, std::chrono::milliseconds deadline = 10s);
  // Evaluates `predicate` every 50 ms until it is truthy (true) or the deadline passes (false). A throw
  // in between (e.g. while a document is replaced) counts as not yet.
  bool wait_until(const std::string& predicate, std::chrono::milliseconds deadline);
  // The whole page (beyond the viewport, up to 8000 px high) as a PNG file at `path`.
  void screenshot(const std::string& path, std::chrono::milliseconds deadline = 20s);

  pid_t pid() const noexcept { return pid_; }
  // The end of Chromium's log (stdout and stderr), for failure messages.
  std::string log_tail(std::size_t max_bytes = 4000) const;

 private:
  struct connection;
  boost::json::object send(boost::json::object message, std::chrono::milliseconds deadline);
  void stop() noexcept;

  devtools_options options_;
  pid_t pid_ = -1;
  std::unique_ptr<connection> conn_;
  std::string session_;  // the page's session on the browser connection (Target.attachToTarget)
  std::int64_t next_id_ = 0;
};

// A JSON string literal of `text`, to put a C++ value into an expression for evaluate().
std::string js_string(std::string_view text);

}  // namespace cproxy::test
