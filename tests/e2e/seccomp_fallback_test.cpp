// Where io_uring is refused (a seccomp filter making io_uring_setup fail with EPERM, as Docker's default
// profile does), `--io auto` falls back to asio with one log line and still serves; `--io uring` fails.
// A build without io_uring (-DCONNECT_WITH_URING=OFF) does the same for its own reason.
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include "child_process.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;

namespace {
std::vector<std::string> start_args(const std::string& io) {
  return {"proxy", "start", "--foreground", "--port", "0", "--threads", "2", "--io", io};
}
#ifdef CONNECT_TEST_WITH_URING
const std::string unusable_reason = "io_uring_setup failed: Operation not permitted";
#else
const std::string unusable_reason = "this build has no io_uring backend";
#endif
std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(seccomp_fallback)

BOOST_AUTO_TEST_CASE(auto_falls_back_to_asio_and_serves) {
  child_process proxy({.args = start_args("auto"), .extra_env = {}, .refuse_io_uring = true});
  BOOST_REQUIRE_MESSAGE(proxy.wait_for_stdout("Press Ctrl+C to stop", 20s),
                        "stdout: " << proxy.out() << "\nstderr: " << proxy.err());
  const unsigned port = cproxy::test::running_port(proxy.out());
  BOOST_REQUIRE(port != 0);
  const std::string response =
      cproxy::test::http_request(port, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
  BOOST_TEST(response.starts_with("HTTP/1.1 200 OK\r\n"));
  BOOST_TEST(response.find("\"io\":\"asio\"") != std::string::npos, response);
  const std::string fallback_line = "io: " + unusable_reason + "; using the asio backend";
  BOOST_TEST(count(proxy.err(), fallback_line) == 1u, proxy.err());
  proxy.signal(SIGTERM);
  BOOST_TEST(proxy.wait_exit(20s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(uring_requested_but_refused_exits_1) {
  child_process proxy({.args = start_args("uring"), .extra_env = {}, .refuse_io_uring = true});
  BOOST_TEST(proxy.wait_exit(20s).value_or(-1) == 1);
  BOOST_TEST(proxy.err() == "[x] io_uring is not usable here: " + unusable_reason + "\n");
}

BOOST_AUTO_TEST_CASE(environment_variable_selects_the_backend) {
  child_process proxy({.args = {"proxy", "start", "--foreground", "--port", "0", "--threads", "1"},
                       .extra_env = {"CONNECT_PROXY_IO=asio"},
                       .refuse_io_uring = false});
  BOOST_REQUIRE(proxy.wait_for_stdout("Press Ctrl+C to stop", 20s));
  const unsigned port = cproxy::test::running_port(proxy.out());
  const std::string response =
      cproxy::test::http_request(port, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
  BOOST_TEST(response.find("\"io\":\"asio\"") != std::string::npos, response);
  BOOST_TEST(proxy.err().find("using the asio backend") == std::string::npos, proxy.err());
  proxy.signal(SIGTERM);
  BOOST_TEST(proxy.wait_exit(20s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
