// The command line and the foreground proxy, on both io backends: exit codes, the port-taken block
// (compared exactly with the contract), the own page, and an orderly stop on SIGTERM and SIGINT.
#include <signal.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "child_process.hpp"
#include "support/built_backends.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
namespace bdata = boost::unit_test::data;

namespace {
const auto& backends = cproxy::test::built_backends;

std::vector<std::string> foreground(const std::string& io, const std::string& port = "0") {
  return {"proxy", "start", "--foreground", "--port", port, "--threads", "2", "--io", io};
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_DATA_TEST_CASE(serves_own_page_and_stops_on_signals,
                     bdata::make(backends) * bdata::make({SIGTERM, SIGINT}), io, sig) {
  child_process proxy({.args = foreground(io), .extra_env = {}, .refuse_io_uring = false});
  BOOST_REQUIRE_MESSAGE(proxy.wait_for_stdout("Press Ctrl+C to stop", 20s), proxy.err());
  const unsigned port = cproxy::test::running_port(proxy.out());
  BOOST_REQUIRE(port != 0);

  const std::string head = cproxy::test::http_request(
      port, "HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 10s);
  BOOST_TEST(head.starts_with("HTTP/1.1 200 OK\r\n"), head);
  BOOST_TEST(head.find("x-private-connect-proxy: 1\r\n") != std::string::npos, head);
  BOOST_TEST(head.find("\r\n\r\n") == head.size() - 4, "HEAD has no body: " << head);

  const std::string page =
      cproxy::test::http_request(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 10s);
  BOOST_TEST(page.find("\"io\":\"" + std::string(io) + "\"") != std::string::npos, page);
  BOOST_TEST(page.find("\"port\":" + std::to_string(port)) != std::string::npos, page);

  proxy.signal(sig);
  BOOST_TEST(proxy.wait_exit(20s).value_or(-1) == 0);
}

BOOST_DATA_TEST_CASE(port_taken_prints_the_contract_block, bdata::make(backends), io) {
  child_process first({.args = foreground(io), .extra_env = {}, .refuse_io_uring = false});
  BOOST_REQUIRE(first.wait_for_stdout("Press Ctrl+C to stop", 20s));
  const std::string port = std::to_string(cproxy::test::running_port(first.out()));
  const std::string next = std::to_string(std::stoul(port) + 1);

  child_process second({.args = foreground(io, port), .extra_env = {}, .refuse_io_uring = false});
  BOOST_TEST(second.wait_exit(20s).value_or(-1) == 1);
  BOOST_TEST(second.err() == "[x] Port " + port +
                                 " is already in use\n"
                                 "  Try: connect proxy start --port " +
                                 next +
                                 "\n"
                                 "Or use --replace to take over:\n"
                                 "connect proxy start --port " +
                                 port + " --replace\n");
  first.signal(SIGTERM);
  BOOST_TEST(first.wait_exit(20s).value_or(-1) == 0);

  // The port is free again at once: a stopped proxy leaves no request holding its socket.
  child_process third({.args = foreground(io, port), .extra_env = {}, .refuse_io_uring = false});
  BOOST_TEST(third.wait_for_stdout("Press Ctrl+C to stop", 20s), third.err());
  third.signal(SIGTERM);
  BOOST_TEST(third.wait_exit(20s).value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
  child_process bad_option(
      {.args = {"proxy", "start", "--no-such-option"}, .extra_env = {}, .refuse_io_uring = false});
  BOOST_TEST(bad_option.wait_exit(20s).value_or(-1) == 2);
  BOOST_TEST(bad_option.err().find("no-such-option") != std::string::npos, bad_option.err());

  child_process bad_io(
      {.args = {"proxy", "start", "--io", "epoll"}, .extra_env = {}, .refuse_io_uring = false});
  BOOST_TEST(bad_io.wait_exit(20s).value_or(-1) == 2);
  BOOST_TEST(bad_io.err().find("--io must be auto, uring or asio, not 'epoll'") != std::string::npos,
             bad_io.err());

  child_process other_command({.args = {"reach", "postgres"}, .extra_env = {}, .refuse_io_uring = false});
  BOOST_TEST(other_command.wait_exit(20s).value_or(-1) == 2);
  BOOST_TEST(other_command.err().find("'reach' is not part of this build") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(version_prints_and_exits_0) {
  child_process version({.args = {"--version"}, .extra_env = {}, .refuse_io_uring = false});
  BOOST_TEST(version.wait_exit(20s).value_or(-1) == 0);
  BOOST_TEST(version.out().starts_with("connect "));
}

BOOST_AUTO_TEST_SUITE_END()
