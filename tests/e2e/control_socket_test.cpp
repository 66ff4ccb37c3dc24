// proxy.sock end to end (issue 10, A3, A5, A6): a status object far over 64 KiB still reads as running,
// slow clients on proxy.sock do not make `status` report stopped, and `stop` signals only the proxy that
// answers on proxy.sock, never a pid a state file names; a second proxy in the same home is refused.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "proxy_home.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;

namespace {

using home_dir = cproxy::test::proxy_home;
using cproxy::test::free_port;
using cproxy::test::state_pid;

struct run_result {
  int code;
  std::string out;
  std::string err;
};

run_result run(const home_dir& home, std::vector<std::string> args) {
  child_process p({.args = std::move(args), .extra_env = {home.env()}, .refuse_io_uring = false});
  const int code = p.wait_exit(30s).value_or(-1);
  return {code, p.out(), p.err()};
}

// Runs: exists and is not a zombie (an exited daemon waits for init, its parent now, to reap it).
bool alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto state_at = text.rfind(") ");
  return pid > 0 && state_at != std::string::npos && state_at + 2 < text.size() && text[state_at + 2] != 'Z';
}

bool exits_soon(int pid) {
  for (int waits = 0; waits < 500 && alive(pid); ++waits) std::this_thread::sleep_for(20ms);
  return !alive(pid);
}

// A client of proxy.sock that never finishes its line: a byte a second; reconnects when the proxy drops
// it, so that proxy.sock always has slow clients while the case runs.
class slow_client {
 public:
  explicit slow_client(std::string path) : path_(std::move(path)), thread_([this] { run(); }) {}
  ~slow_client() {
    stop_ = true;
    thread_.join();
  }
  slow_client(const slow_client&) = delete;
  slow_client& operator=(const slow_client&) = delete;
  int bytes_sent() const { return sent_; }

 private:
  int connect_once() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (fd >= 0) ::close(fd);
    return -1;
  }
  void run() {
    int fd = -1;
    for (int ticks = 0; ticks < 600 && !stop_; ++ticks) {  // 60 s at most
      if (ticks % 10 == 0) {
        if (fd < 0) fd = connect_once();
        if (fd >= 0 && ::send(fd, "{", 1, MSG_NOSIGNAL) != 1) {
          ::close(fd);
          fd = connect_once();
        } else if (fd >= 0) {
          ++sent_;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
    if (fd >= 0) ::close(fd);
  }
  std::string path_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0};
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(control_socket)

// A5: about 650 routes made the status line pass proxy.sock's 64 KiB line cap: `status` said stopped.
BOOST_AUTO_TEST_CASE(a_status_of_2000_routes_reads_as_running) {
  home_dir home;
  std::string entries;
  for (int i = 0; i < 2000; ++i)
    entries += (i ? ", " : "") + std::string(R"({"serviceName": "service-)") + std::to_string(i) +
               R"(", "localPort": )" + std::to_string(10000 + i) + "}";
  std::ofstream(home.path + "/active-routes.json") << R"({"version": 1, "routes": [)" << entries << "]}\n";
  const std::string port = std::to_string(free_port());
  const run_result start = run(home, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_REQUIRE_MESSAGE(start.code == 0, start.err);

  const run_result status = run(home, {"proxy", "status"});
  BOOST_TEST(status.out.starts_with("🌐 Proxy Status\n\n  ● Proxy: running (PID "), status.out.substr(0, 200));
  int urls = 0;
  for (std::size_t at = status.out.find("\n      http://"); at != std::string::npos;
       at = status.out.find("\n      http://", at + 1))
    ++urls;
  BOOST_TEST(urls == 2000);
  BOOST_TEST(status.out.find("      http://service-1999.localhost:" + port + "\n") != std::string::npos);

  const run_result json = run(home, {"proxy", "status", "--json"});
  boost::json::error_code ec;
  const boost::json::value parsed = boost::json::parse(json.out, ec);
  BOOST_TEST(!ec, ec.message());
  BOOST_TEST(json.out.size() > 65536u, "the status object is over the old 64 KiB cap");
  const boost::json::object* o = ec ? nullptr : parsed.if_object();
  const boost::json::value* routes = o ? o->if_contains("routes") : nullptr;
  BOOST_TEST((routes && routes->is_array() && routes->get_array().size() == 2000u), json.out.substr(0, 200));
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

// A6: proxy.sock served one client at a time, 5 s per read: a client sending a byte now and then held
// it, and `status` said stopped while the proxy served on.
BOOST_AUTO_TEST_CASE(slow_clients_on_proxy_sock_do_not_stop_status) {
  home_dir home;
  const std::string port = std::to_string(free_port());
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", port, "--threads", "1"}).code == 0);
  {
    std::vector<std::unique_ptr<slow_client>> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<slow_client>(home.path + "/proxy.sock"));
    // Until each has sent a byte: they hold their connections open, mid-line.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (const auto& c : clients)
      while (c->bytes_sent() == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    for (int round = 0; round < 3; ++round) {
      const run_result status = run(home, {"proxy", "status"});
      BOOST_TEST(status.out.starts_with("🌐 Proxy Status\n\n  ● Proxy: running (PID "),
                 "round " << round << ": " << status.out);
    }
    const run_result json = run(home, {"proxy", "status", "--json"});
    BOOST_TEST(json.out.starts_with("{\"running\":true,"), json.out);
  }
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

// A3: a second --foreground proxy in the same home warned that proxy.sock was taken but still wrote the
// state file over the first one's.
BOOST_AUTO_TEST_CASE(a_second_proxy_in_the_same_home_is_refused) {
  home_dir home;
  const std::string port = std::to_string(free_port());
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", port, "--threads", "1"}).code == 0);
  const int first = state_pid(home.path);
  BOOST_REQUIRE(alive(first));

  child_process second({.args = {"proxy", "start", "--foreground", "--port", "0", "--threads", "1"},
                        .extra_env = {home.env()},
                        .refuse_io_uring = false});
  const std::optional<int> code = second.wait_exit(20s);
  BOOST_TEST(code.has_value(), "the second proxy runs on: " << second.out());
  BOOST_TEST(code.value_or(-1) == 1);
  BOOST_TEST(second.err().find("[x] A proxy is already running in " + home.path + " (pid " +
                               std::to_string(first) + ")\n") != std::string::npos,
             second.err());
  BOOST_TEST(second.out() == "");
  BOOST_TEST(state_pid(home.path) == first, "the state file still names the first proxy");

  const run_result status = run(home, {"proxy", "status"});
  BOOST_TEST(
      status.out.starts_with("🌐 Proxy Status\n\n  ● Proxy: running (PID " + std::to_string(first) + ")"),
      status.out);
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
  BOOST_TEST(exits_soon(first));
}

// A3: `stop` signalled the pid the state file named, even when another process answered on proxy.sock:
// a state file naming another proxy (here one in another home) got that one killed.
BOOST_AUTO_TEST_CASE(stop_never_signals_a_pid_that_does_not_answer_on_proxy_sock) {
  home_dir home;
  home_dir elsewhere;
  child_process victim({.args = {"proxy", "start", "--foreground", "--port", "0", "--threads", "1"},
                        .extra_env = {elsewhere.env()},
                        .refuse_io_uring = false});
  BOOST_REQUIRE(victim.wait_for_stdout("Press Ctrl+C to stop", 20s));
  const std::string port = std::to_string(free_port());
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", port, "--threads", "1"}).code == 0);
  const int proxy = state_pid(home.path);
  BOOST_REQUIRE(alive(proxy));
  // The state file now names the other proxy, a live `connect` process; proxy.sock is still this one's.
  std::ofstream(home.path + "/proxy-state.json")
      << "{\"pid\": " << victim.pid() << ", \"port\": " << port
      << ", \"tls\": false, \"startedAt\": \"2024-01-15T10:30:00.000Z\"}\n";

  const run_result stop = run(home, {"proxy", "stop"});
  BOOST_TEST(stop.code == 0);
  BOOST_TEST(!victim.wait_exit(100ms).has_value(),
             "stop killed a process that does not answer on proxy.sock");
  const run_result other = run(elsewhere, {"proxy", "status"});
  BOOST_TEST(
      other.out.starts_with("🌐 Proxy Status\n\n  ● Proxy: running (PID " + std::to_string(victim.pid())),
      other.out);
  // Started by this case: stopped by their pids.
  victim.signal(SIGTERM);
  BOOST_TEST(victim.wait_exit(20s).value_or(-1) == 0);
  ::kill(proxy, SIGTERM);
  exits_soon(proxy);
  std::remove((home.path + "/proxy-state.json").c_str());
}

BOOST_AUTO_TEST_SUITE_END()
