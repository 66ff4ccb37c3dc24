// Routes that change while the proxy runs, end to end on both io backends: active-routes.json written,
// replaced by rename, deleted, re-created and broken; an entry whose process ends; a fake hub on loopback
// that checks the API key, serves services, then fails; no API key, no request. Every check polls the
// status object (GET / with Accept: application/json) up to a deadline; no duration is asserted.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "support/built_backends.hpp"
#include "support/output_text.hpp"
#include "support/posix_server.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
using cproxy::test::count_of;
namespace bdata = boost::unit_test::data;

namespace {
const auto& backends = cproxy::test::built_backends;

// PRIVATECONNECT_HOME for one case: a fresh folder, removed at the end.
struct home_dir : cproxy::test::temp_dir {
  home_dir() : temp_dir("connect-e2e") {}
  // As careful tools replace a file: a temp file renamed over it.
  void replace(const std::string& name, const std::string& text) const {
    std::filesystem::rename(write(name + ".tmp", text), path + "/" + name);
  }
  void remove(const std::string& name) const { std::filesystem::remove(path + "/" + name); }
  std::string env() const { return "PRIVATECONNECT_HOME=" + path; }
};

std::string reach_file(const std::string& entries) {
  return R"({"version": 1, "routes": [)" + entries + "]}";
}

std::vector<std::string> foreground(const std::string& io, const std::vector<std::string>& more = {}) {
  std::vector<std::string> args{"proxy",     "start", "--foreground", "--port", "0",
                                "--threads", "2",     "--io",         io};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// The running proxy's routes from its status object, "name=upstream/source" joined by spaces, or "?" when
// the status cannot be read.
std::string routes_of(unsigned port) {
  const std::string response = cproxy::test::http_request(
      port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n", 5s);
  const auto body_at = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.1 200 ") || body_at == std::string::npos) return "?";
  boost::json::error_code ec;
  const boost::json::value status = boost::json::parse(response.substr(body_at + 4), ec);
  if (ec || !status.is_object() || !status.as_object().contains("routes")) return "?";
  std::string out;
  for (const boost::json::value& r : status.at("routes").as_array()) {
    if (!out.empty()) out += ' ';
    out += std::string(r.at("name").as_string()) + "=" + std::string(r.at("upstream").as_string()) + "/" +
           std::string(r.at("source").as_string());
  }
  return out;
}

// Polls the status until its routes read `expected`; the last reading otherwise.
std::string routes_become(unsigned port, const std::string& expected,
                          std::chrono::milliseconds deadline = 5s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string seen = routes_of(port);
  while (seen != expected && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(25ms);
    seen = routes_of(port);
  }
  return seen;
}

// Waits until the proxy's log (stderr in the foreground) holds `needle`.
bool log_shows(child_process& proxy, const std::string& needle, std::chrono::milliseconds deadline = 5s) {
  return cproxy::test::wait_for_text([&] { return proxy.err(); }, needle, deadline, 25ms);
}

unsigned started(child_process& proxy) {
  BOOST_TEST_REQUIRE(proxy.wait_for_stdout("Press Ctrl+C to stop", 20s), proxy.err());
  const unsigned port = cproxy::test::running_port(proxy.out());
  BOOST_TEST_REQUIRE(port != 0u);
  return port;
}

void stop(child_process& proxy) {
  proxy.signal(SIGTERM);
  BOOST_TEST(proxy.wait_exit(20s).value_or(-1) == 0);
}

// The hub's side of GET /v1/services, on a loopback port, one connection at a time on its own thread.
// Answers 401 without the right x-api-key; otherwise `services` with 200, or 500 once failing.
class fake_hub {
 public:
  explicit fake_hub(std::string api_key, std::string services)
      : api_key_(std::move(api_key)), services_(std::move(services)) {}

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  void fail() { failing_ = true; }
  std::size_t requests() const { return requests_; }
  std::size_t refused() const { return refused_; }
  std::string first_request() const {
    std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  std::string respond(const std::string& request) {
    {
      std::lock_guard lock(mutex_);
      if (first_.empty()) first_ = request;
    }
    std::string answer;
    if (request.find("\r\nx-api-key: " + api_key_ + "\r\n") == std::string::npos) {
      ++refused_;
      answer = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    } else if (failing_) {
      answer = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    } else {
      answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(services_.size()) + "\r\n\r\n" + services_;
    }
    ++requests_;
    return answer;
  }

  std::string api_key_, services_;
  std::atomic<bool> failing_{false};
  std::atomic<std::size_t> requests_{0}, refused_{0};
  mutable std::mutex mutex_;
  std::string first_;
  // Last: its thread, which calls respond(), stops before the members above go.
  cproxy::test::request_head_server server_{[this](const std::string& request) { return respond(request); }};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(live_routes)

BOOST_DATA_TEST_CASE(active_routes_file_changes_apply_while_running, bdata::make(backends), io) {
  home_dir home;
  child_process proxy({.args = foreground(io), .extra_env = {home.env()}, .refuse_io_uring = false});
  const unsigned port = started(proxy);
  BOOST_TEST(routes_of(port) == "");

  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8080, "pid": 0})"));
  BOOST_TEST(routes_become(port, "api=127.0.0.1:8080/reach") == "api=127.0.0.1:8080/reach");
  BOOST_TEST(log_shows(proxy, "routes: +api (127.0.0.1:8080, reach)"), proxy.err());

  home.replace("active-routes.json", reach_file(R"({"serviceName": "Web", "localPort": 5173})"));
  BOOST_TEST(routes_become(port, "web=127.0.0.1:5173/reach") == "web=127.0.0.1:5173/reach");

  home.remove("active-routes.json");
  BOOST_TEST(routes_become(port, "") == "");

  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8081})"));
  BOOST_TEST(routes_become(port, "api=127.0.0.1:8081/reach") == "api=127.0.0.1:8081/reach");

  // Half-written: the last good routes stay, and the problem is logged once, however often it is seen.
  const std::string broken = R"({"version": 1, "routes": [{"serviceName": "api", )";
  home.write("active-routes.json", broken);
  BOOST_TEST_REQUIRE(log_shows(proxy, "invalid JSON"), proxy.err());
  home.write("active-routes.json", broken);
  home.replace("active-routes.json", broken);
  std::this_thread::sleep_for(500ms);  // time for both to be read (and, wrongly, logged or applied)
  BOOST_TEST(routes_of(port) == "api=127.0.0.1:8081/reach");
  BOOST_TEST(count_of(proxy.err(), "invalid JSON") == 1u, proxy.err());

  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8082})"));
  BOOST_TEST(routes_become(port, "api=127.0.0.1:8082/reach") == "api=127.0.0.1:8082/reach");
  stop(proxy);
}

BOOST_DATA_TEST_CASE(an_entry_drops_out_when_its_process_dies, bdata::make(backends), io) {
  home_dir home;
  child_process proxy({.args = foreground(io), .extra_env = {home.env()}, .refuse_io_uring = false});
  const unsigned port = started(proxy);

  const pid_t service = ::fork();
  if (service == 0) {
    ::pause();
    ::_exit(0);
  }
  BOOST_TEST_REQUIRE(service > 0);
  home.write("active-routes.json",
             reach_file(R"({"serviceName": "api", "localPort": 8080, "pid": )" + std::to_string(service) +
                        R"(}, {"serviceName": "docs", "localPort": 4000})"));
  const std::string both = "api=127.0.0.1:8080/reach docs=127.0.0.1:4000/reach";
  BOOST_TEST(routes_become(port, both) == both);

  ::kill(service, SIGKILL);
  int status = 0;
  ::waitpid(service, &status, 0);
  BOOST_TEST(routes_become(port, "docs=127.0.0.1:4000/reach") == "docs=127.0.0.1:4000/reach");
  BOOST_TEST(log_shows(proxy, "routes: -api"), proxy.err());
  stop(proxy);
}

BOOST_DATA_TEST_CASE(hub_services_become_routes_and_stay_when_the_hub_fails, bdata::make(backends), io) {
  home_dir home;
  fake_hub hub("test-key-1", R"([{"name": "db", "tunnelPort": 7002}, {"name": "web", "tunnelPort": 7001},
                                 {"name": "offline", "tunnelPort": null}])");
  const std::string config =
      home.write("test-config.json", R"({"apiKey": "test-key-1", "hubUrl": ")" + hub.url() +
                                         R"(", "routes": [{"name": "web", "port": 5173}]})");
  child_process proxy(
      {.args = foreground(io, {"--config", config}), .extra_env = {home.env()}, .refuse_io_uring = false});
  const unsigned port = started(proxy);

  // The config route outranks the hub's service of the same name.
  const std::string expected = "db=127.0.0.1:7002/hub web=127.0.0.1:5173/config";
  BOOST_TEST(routes_become(port, expected) == expected);
  BOOST_TEST(hub.refused() == 0u);
  BOOST_TEST(hub.first_request().starts_with("GET /v1/services HTTP/1.1\r\n"), hub.first_request());

  // The next poll (10 s later) fails: the hub routes stay, and the outage is logged.
  hub.fail();
  const std::size_t before = hub.requests();
  const auto until = std::chrono::steady_clock::now() + 25s;
  while (hub.requests() == before && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST_REQUIRE(hub.requests() > before);
  BOOST_TEST(log_shows(proxy, "unavailable: it answered 500"), proxy.err());
  BOOST_TEST(routes_of(port) == expected);
  stop(proxy);
  BOOST_TEST(count_of(proxy.err(), "unavailable") == 1u, proxy.err());
}

BOOST_DATA_TEST_CASE(without_an_api_key_the_hub_is_not_asked, bdata::make(backends), io) {
  home_dir home;
  fake_hub hub("unused", "[]");
  const std::string config = home.write("test-config.json", R"({"hubUrl": ")" + hub.url() + R"("})");
  child_process proxy(
      {.args = foreground(io, {"--config", config}), .extra_env = {home.env()}, .refuse_io_uring = false});
  const unsigned port = started(proxy);
  BOOST_TEST(log_shows(proxy, "hub: no apiKey configured; not polling"), proxy.err());

  // The feed runs (a file route arrives), and still nothing reached the hub.
  home.write("active-routes.json", reach_file(R"({"serviceName": "api", "localPort": 8080})"));
  BOOST_TEST(routes_become(port, "api=127.0.0.1:8080/reach") == "api=127.0.0.1:8080/reach");
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(hub.requests() == 0u);
  stop(proxy);
}

BOOST_AUTO_TEST_SUITE_END()
