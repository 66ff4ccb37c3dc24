// --replace: our own proxy hands its listening socket to the successor over proxy.sock, so under
// continuous load not one request fails; a foreign listener (same user) is stopped and the port taken.
// Also: status and stop go through proxy.sock.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "proxy_home.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;

namespace {

using home_dir = cproxy::test::proxy_home;
using cproxy::test::free_port;

int run(const home_dir& home, std::vector<std::string> args, std::string* out = nullptr) {
  child_process p(
      {.args = std::move(args), .extra_env = {"PRIVATECONNECT_HOME=" + home.path}, .refuse_io_uring = false});
  const int code = p.wait_exit(30s).value_or(-1);
  if (out) *out = p.out() + p.err();
  return code;
}

int state_pid(const home_dir& home) {
  return cproxy::test::state_pid(home.path);
}

bool alive(int pid) {
  return ::kill(pid, 0) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(replace)

BOOST_AUTO_TEST_CASE(our_own_proxy_hands_over_without_a_failed_request) {
  home_dir home;
  const unsigned port = free_port();
  const std::string p = std::to_string(port);
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", p, "--threads", "1"}) == 0);
  const int old_pid = state_pid(home);
  BOOST_REQUIRE(old_pid > 0);

  // Continuous load from another thread: a new connection per request until told to stop (bounded).
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::string first_failure;  // written by the load thread before it ends; read after join()
  std::thread load([&] {
    for (int i = 0; i < 200000 && !stop; ++i) {
      const std::string r = cproxy::test::http_request(
          port, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
      if (r.starts_with("HTTP/1.1 200 ")) {
        ++ok;
      } else {
        if (failed++ == 0) first_failure = r.empty() ? "(no response)" : r.substr(0, 200);
      }
    }
  });
  for (int waits = 0; waits < 500 && ok < 50; ++waits) std::this_thread::sleep_for(10ms);

  std::string out;
  const int code = run(home, {"proxy", "start", "--port", p, "--threads", "1", "--replace"}, &out);
  const int served_before = ok;
  for (int waits = 0; waits < 500 && ok < served_before + 50; ++waits) std::this_thread::sleep_for(10ms);
  stop = true;
  load.join();

  BOOST_TEST(code == 0, out);
  {
    std::ifstream log(home.path + "/proxy.log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    BOOST_TEST(
        failed == 0, failed << " requests failed, " << ok << " succeeded; the first: " << first_failure
                            << "\nproxy.log without access lines:\n"
                            << [&] {
                                 std::string kept;
                                 std::istringstream lines(text);
                                 for (std::string l; std::getline(lines, l);)
                                   if (l.find(" GET ") == std::string::npos) kept += l + "\n";
                                 return kept;
                               }());
  }
  BOOST_TEST(ok > served_before, "the successor serves");
  const int new_pid = state_pid(home);
  BOOST_TEST(new_pid != old_pid);
  for (int waits = 0; waits < 1000 && alive(old_pid); ++waits) std::this_thread::sleep_for(20ms);
  BOOST_TEST(!alive(old_pid), "the old proxy drains and exits");

  std::string status;
  run(home, {"proxy", "status"}, &status);
  BOOST_TEST(status.find("running (PID " + std::to_string(new_pid) + ")") != std::string::npos, status);
  std::string stopped;
  run(home, {"proxy", "stop"}, &stopped);
  BOOST_TEST(stopped == "[ok] Proxy stopped.\n");
  BOOST_TEST(!alive(new_pid));
  BOOST_TEST(!std::filesystem::exists(home.path + "/proxy.sock"), "the proxy removes its control socket");
}

BOOST_AUTO_TEST_CASE(a_foreign_listener_is_stopped) {
  home_dir home;
  const unsigned port = free_port();
  int ready[2];
  BOOST_REQUIRE(::pipe(ready) == 0);
  const pid_t squatter = ::fork();
  if (squatter == 0) {
    // Another program on the port: listens and waits to be told to go.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) ::_exit(1);
    const ssize_t ignored = ::write(ready[1], "x", 1);
    (void)ignored;
    for (int i = 0; i < 600; ++i) ::sleep(1);
    ::_exit(0);
  }
  char c;
  BOOST_REQUIRE(::read(ready[0], &c, 1) == 1);
  const std::string p = std::to_string(port);

  std::string refused;
  BOOST_TEST(run(home, {"proxy", "start", "--port", p, "--threads", "1"}, &refused) == 1, refused);
  std::string out;
  BOOST_TEST(run(home, {"proxy", "start", "--port", p, "--threads", "1", "--replace"}, &out) == 0, out);
  int status = 0;
  pid_t reaped = 0;
  for (int waits = 0; waits < 500 && reaped == 0; ++waits) {
    reaped = ::waitpid(squatter, &status, WNOHANG);
    if (reaped == 0) std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(reaped == squatter, "the foreign listener was stopped");
  BOOST_TEST((reaped == squatter && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM));
  const std::string page =
      cproxy::test::http_request(port, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  BOOST_TEST(page.starts_with("HTTP/1.1 200 "), page);
  if (reaped != squatter) ::kill(squatter, SIGKILL), ::waitpid(squatter, &status, 0);
  BOOST_TEST(run(home, {"proxy", "stop"}) == 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

// No socket to hand over when the ports differ, but the home keeps one proxy: without this, the second
// ran without proxy.sock and `status`/`stop` saw only the first.
BOOST_AUTO_TEST_CASE(our_own_proxy_on_another_port_is_stopped) {
  home_dir home;
  const unsigned first_port = free_port();
  BOOST_REQUIRE(run(home, {"proxy", "start", "--port", std::to_string(first_port), "--threads", "1"}) == 0);
  const int old_pid = state_pid(home);
  BOOST_REQUIRE(old_pid > 0);
  unsigned second_port = free_port();
  for (int tries = 0; tries < 20 && second_port == first_port; ++tries) second_port = free_port();
  BOOST_REQUIRE(second_port != first_port);

  std::string out;
  BOOST_TEST(
      run(home, {"proxy", "start", "--port", std::to_string(second_port), "--threads", "1", "--replace"},
          &out) == 0,
      out);
  for (int waits = 0; waits < 1000 && alive(old_pid); ++waits) std::this_thread::sleep_for(20ms);
  BOOST_TEST(!alive(old_pid), "the predecessor on the other port stopped");
  const int new_pid = state_pid(home);
  BOOST_TEST((new_pid > 0 && new_pid != old_pid));
  std::string status;
  BOOST_TEST(run(home, {"proxy", "status"}, &status) == 0, status);
  BOOST_TEST(status.find(std::to_string(second_port)) != std::string::npos, status);
  const std::string page = cproxy::test::http_request(
      second_port, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 5s);
  BOOST_TEST(page.starts_with("HTTP/1.1 200 "), page);
  BOOST_TEST(run(home, {"proxy", "stop"}) == 0);
  for (int waits = 0; waits < 1000 && alive(new_pid); ++waits) std::this_thread::sleep_for(20ms);
  BOOST_TEST(!alive(new_pid));
  if (alive(old_pid)) ::kill(old_pid, SIGKILL);
}

BOOST_AUTO_TEST_SUITE_END()
