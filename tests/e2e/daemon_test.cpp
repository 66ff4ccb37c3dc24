// The daemon: `connect proxy start` backgrounds the proxy and prints the contract's block, `status`
// and `stop` find it through proxy-state.json, a second start says it runs, a stale state file (dead
// pid, or a pid now used by another program) is ignored, and a taken port fails the start with exit 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "child_process.hpp"
#include "proxy_home.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;

namespace {

using home_dir = cproxy::test::proxy_home;
using cproxy::test::free_port;

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

}  // namespace

BOOST_AUTO_TEST_SUITE(daemon_mode)

BOOST_AUTO_TEST_CASE(start_status_stop) {
  home_dir home;
  const std::string port = std::to_string(free_port());

  const run_result before = run(home, {"proxy", "status"});
  BOOST_TEST(before.code == 0);
  BOOST_TEST(before.out == "🌐 Proxy Status\n\n  ○ Proxy: stopped\n");

  const run_result start = run(home, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_TEST(start.code == 0, start.err);
  BOOST_TEST(start.out == "🌐 Starting proxy...\n\n[ok] HTTP proxy started on port " + port +
                              "\n  Logs: " + home.path + "/proxy.log\n  Stop: connect proxy stop\n");

  const run_result again = run(home, {"proxy", "start", "--port", port});
  BOOST_TEST(again.code == 0);
  BOOST_TEST(again.out == "[!] Proxy is already running on port " + port + "\n");

  const run_result status = run(home, {"proxy", "status"});
  BOOST_TEST(status.code == 0);
  BOOST_TEST(status.out.starts_with("🌐 Proxy Status\n\n  ● Proxy: running (PID "), status.out);
  BOOST_TEST(
      status.out.find("\n    Port: " + port + "\n    TLS:  disabled\n    Routes:\n") != std::string::npos,
      status.out);

  const run_result json = run(home, {"proxy", "status", "--json"});
  BOOST_TEST(json.out.starts_with("{\"running\":true,"), json.out);
  BOOST_TEST(json.out.find("\"port\":" + port) != std::string::npos, json.out);

  const run_result stop = run(home, {"proxy", "stop"});
  BOOST_TEST(stop.code == 0);
  BOOST_TEST(stop.out == "[ok] Proxy stopped.\n");
  BOOST_TEST(!std::filesystem::exists(home.path + "/proxy-state.json"),
             "the proxy removes its own state file");

  const run_result stop_again = run(home, {"proxy", "stop"});
  BOOST_TEST(stop_again.code == 0);
  BOOST_TEST(stop_again.out == "[!] Proxy is not running.\n");

  std::ifstream log(home.path + "/proxy.log");
  std::string first_line;
  std::getline(log, first_line);
  BOOST_TEST(first_line.size() > 24u);
  BOOST_TEST(first_line[4] == '-', "every log line starts with an ISO-8601 timestamp: " << first_line);
  BOOST_TEST(first_line[23] == 'Z', first_line);
}

BOOST_AUTO_TEST_CASE(a_stale_state_file_is_ignored) {
  home_dir home;
  // A pid that is dead, then one that lives but is another program: neither is a running proxy.
  child_process sleeper({.args = {"--version"}, .extra_env = {}, .refuse_io_uring = false});
  sleeper.wait_exit(10s);
  const int dead_pid = sleeper.pid();
  for (const int pid : {dead_pid, static_cast<int>(::getpid())}) {
    std::ofstream(home.path + "/proxy-state.json")
        << "{\"pid\": " << pid
        << ", \"port\": 1, \"tls\": false, \"startedAt\": \"2024-01-15T10:30:00.000Z\"}\n";
    const run_result status = run(home, {"proxy", "status"});
    BOOST_TEST(status.out == "🌐 Proxy Status\n\n  ○ Proxy: stopped\n", "pid " << pid);
    const run_result stop = run(home, {"proxy", "stop"});
    BOOST_TEST(stop.out == "[!] Proxy is not running.\n", "pid " << pid);
  }
  const std::string port = std::to_string(free_port());
  const run_result start = run(home, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_TEST(start.code == 0, start.err);
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

BOOST_AUTO_TEST_CASE(a_connect_process_that_does_not_answer_on_proxy_sock_is_not_the_proxy) {
  home_dir home;
  // Another `connect` command holding the pid the state file names: same process name, no proxy.sock.
  const std::string fake = home.path + "/connect";
  std::filesystem::copy_file("/bin/sleep", fake);
  const pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::execl(fake.c_str(), "connect", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  BOOST_REQUIRE(sleeper > 0);
  std::ofstream(home.path + "/proxy-state.json")
      << "{\"pid\": " << sleeper
      << ", \"port\": 1, \"tls\": false, \"startedAt\": \"2024-01-15T10:30:00.000Z\"}\n";
  BOOST_TEST(run(home, {"proxy", "status"}).out == "🌐 Proxy Status\n\n  ○ Proxy: stopped\n");
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[!] Proxy is not running.\n");
  BOOST_TEST(::kill(sleeper, 0) == 0, "stop must not signal a process that is not the proxy");
  const std::string port = std::to_string(free_port());
  const run_result start = run(home, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_TEST(start.code == 0, start.err);
  BOOST_TEST(start.out.find("[ok] HTTP proxy started on port " + port) != std::string::npos, start.out);
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
  ::kill(sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);
}

BOOST_AUTO_TEST_CASE(a_taken_port_fails_the_start_with_the_contract_block) {
  home_dir home;
  home_dir other;
  const std::string port = std::to_string(free_port());
  BOOST_REQUIRE(run(other, {"proxy", "start", "--port", port, "--threads", "1"}).code == 0);
  const run_result start = run(home, {"proxy", "start", "--port", port});
  BOOST_TEST(start.code == 1);
  BOOST_TEST(start.out == "");
  const std::string next = std::to_string(std::stoul(port) + 1);
  BOOST_TEST(start.err == "[x] Port " + port + " is already in use\n  Try: connect proxy start --port " +
                              next + "\nOr use --replace to take over:\nconnect proxy start --port " + port +
                              " --replace\n");
  BOOST_TEST(run(other, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Polls `path` until it contains `needle` (the daemon writes asynchronously), with a deadline.
bool file_gets(const std::string& path, const std::string& needle) {
  for (int polls = 0; polls < 250; ++polls) {
    if (read_file(path).find(needle) != std::string::npos) return true;
    ::usleep(20'000);
  }
  return false;
}

BOOST_AUTO_TEST_CASE(access_lines_go_to_the_log_which_sighup_reopens) {
  home_dir home;
  const std::string port = std::to_string(free_port());
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", port, "--threads", "1"}).code == 0);
  const std::string log = home.path + "/proxy.log";
  const unsigned p = static_cast<unsigned>(std::stoul(port));
  cproxy::test::http_request(p, "GET /first HTTP/1.1\r\nHost: nothing.localhost\r\nConnection: close\r\n\r\n",
                             5s);
  BOOST_TEST(file_gets(log, " GET nothing.localhost/first 404 "), read_file(log));

  // logrotate: the file is moved away, then SIGHUP; new lines go to a new proxy.log.
  std::filesystem::rename(log, log + ".1");
  const int pid = cproxy::test::state_pid(home.path);
  BOOST_REQUIRE(pid > 0);
  ::kill(pid, SIGHUP);
  BOOST_TEST(file_gets(log, "reopened the log on SIGHUP"));
  cproxy::test::http_request(p, "GET /second HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  BOOST_TEST(file_gets(log, " GET localhost/second 200 "), read_file(log));
  BOOST_TEST(read_file(log + ".1").find("/second") == std::string::npos);
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

BOOST_AUTO_TEST_CASE(quiet_turns_access_lines_off) {
  home_dir home;
  const std::string port = std::to_string(free_port());
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", port, "--threads", "1", "--quiet"}).code == 0);
  cproxy::test::http_request(static_cast<unsigned>(std::stoul(port)),
                             "GET /quiet HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  BOOST_TEST(run(home, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
  const std::string text = read_file(home.path + "/proxy.log");
  BOOST_TEST(text.find("stopped") != std::string::npos, text);
  BOOST_TEST(text.find("/quiet") == std::string::npos, text);
}

BOOST_AUTO_TEST_SUITE_END()
