// The apiKey end to end: a proxy started in the background with a fake hub that answers, then fails.
// The key reaches the hub as x-api-key, and nothing else: not proxy.log (the outage line included), not
// the status object (`status --json`, proxy.sock's answer).
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "isolated_home.hpp"
#include "support/posix_server.hpp"

using namespace std::chrono_literals;
using cproxy::test::isolated_home;
using cproxy::test::run;
using cproxy::test::run_result;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hub_secret)

BOOST_AUTO_TEST_CASE(the_api_key_reaches_the_hub_and_nothing_else) {
  const std::string key = "pc-live-9d8e7f6a5b4c3d2e1f";
  std::atomic<bool> failing{false};
  std::atomic<int> with_key{0};
  cproxy::test::request_head_server hub([&](const std::string& request) {
    if (request.find("\r\nx-api-key: " + key + "\r\n") != std::string::npos) ++with_key;
    if (failing) return std::string("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    const std::string body = R"([{"name": "db", "tunnelPort": 7002}])";
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  });
  isolated_home home;
  std::ofstream(home.home.path + "/config.json")
      << R"({"apiKey": ")" << key << R"(", "hubUrl": "http://127.0.0.1:)" << hub.port() << R"("})";
  const std::string port = std::to_string(cproxy::test::free_port());
  const run_result start = run(home, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_REQUIRE_MESSAGE(start.code == 0, start.err);

  // The hub's route is in the status object: the answer was read.
  run_result json;
  for (int i = 0; i < 200; ++i) {
    json = run(home, {"proxy", "status", "--json"});
    if (json.out.find("\"db\"") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(json.out.find("\"db\"") != std::string::npos, json.out);
  BOOST_TEST(with_key.load() >= 1);

  // An outage: its one warning line names the hub, not the key (the next poll is up to 10 s away).
  failing = true;
  const std::string log_file = home.home.path + "/proxy.log";
  for (int i = 0; i < 600 && slurp(log_file).find("unavailable: it answered 500") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  const std::string log = slurp(log_file);
  BOOST_TEST(log.find("unavailable: it answered 500") != std::string::npos, log);
  json = run(home, {"proxy", "status", "--json"});
  BOOST_TEST(json.code == 0);
  BOOST_TEST(json.out.find(key) == std::string::npos, json.out);
  BOOST_TEST(json.out.find("\"db\"") != std::string::npos, json.out);  // kept through the outage
  const run_result text = run(home, {"proxy", "status"});
  BOOST_TEST(text.out.find(key) == std::string::npos, text.out);
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
  BOOST_TEST(slurp(log_file).find(key) == std::string::npos, slurp(log_file));
}

BOOST_AUTO_TEST_SUITE_END()
