// The home folder as a hostile local user leaves it (issue 10, A1 and A2), with the real binary: a home
// others can write to is refused before anything is written in it, proxy.log is never written through a
// planted symlink, and a planted CA without the contract's name constraints is made again.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "child_process.hpp"
#include "isolated_home.hpp"
#include "proxy_home.hpp"

using namespace std::chrono_literals;
using cproxy::test::child_process;
using cproxy::test::free_port;
using cproxy::test::isolated_home;
using cproxy::test::proxy_home;
using cproxy::test::run;
using cproxy::test::run_result;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Polls `path` until it holds `needle` or 10 s pass.
bool wait_for_text(const std::string& path, const std::string& needle) {
  for (int tries = 0; tries < 200; ++tries) {
    if (slurp(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(home_safety)

BOOST_AUTO_TEST_CASE(a_home_others_can_write_to_is_refused_and_its_log_link_never_written) {
  isolated_home h;
  const std::string home = h.home.path;
  BOOST_TEST_REQUIRE(::chmod(home.c_str(), 0777) == 0);
  // What another user would plant in a shared home: the log as a link to a file of their choice.
  const std::string target = home + "/root/target";
  std::ofstream(target) << "";
  BOOST_TEST_REQUIRE(::symlink(target.c_str(), (home + "/proxy.log").c_str()) == 0);

  const std::string port = std::to_string(free_port());
  const run_result start = run(h, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_TEST(start.code == 1, start.out);
  BOOST_TEST(start.out == "");
  BOOST_TEST(start.err == "[x] cannot use the home folder " + home +
                              ": other users can write to it (mode 0777) — run: chmod 700 " + home + "\n");
  BOOST_TEST(slurp(target) == "");
  BOOST_TEST(!std::filesystem::exists(home + "/proxy-state.json"));

  // The fix the message names works.
  BOOST_TEST_REQUIRE(::unlink((home + "/proxy.log").c_str()) == 0);
  BOOST_TEST_REQUIRE(::chmod(home.c_str(), 0700) == 0);
  const run_result again = run(h, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_TEST(again.code == 0, again.err);
  BOOST_TEST(run(h, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
}

BOOST_AUTO_TEST_CASE(sighup_never_reopens_the_log_through_a_planted_link) {
  isolated_home h;
  const std::string home = h.home.path;
  const std::string port = std::to_string(free_port());
  const run_result start = run(h, {"proxy", "start", "--port", port, "--threads", "1"});
  BOOST_TEST_REQUIRE(start.code == 0, start.err);
  const int pid = cproxy::test::state_pid(home);
  BOOST_TEST_REQUIRE(pid > 0);

  // logrotate moves the log away; a link stands where the new one would be opened.
  const std::string log = home + "/proxy.log";
  BOOST_TEST_REQUIRE(::rename(log.c_str(), (log + ".1").c_str()) == 0);
  const std::string target = home + "/root/target";
  std::ofstream(target) << "";
  BOOST_TEST_REQUIRE(::symlink(target.c_str(), log.c_str()) == 0);
  BOOST_TEST_REQUIRE(::kill(pid, SIGHUP) == 0);

  BOOST_TEST(wait_for_text(log + ".1", "cannot reopen " + log + ": Too many levels of symbolic links"),
             slurp(log + ".1"));
  BOOST_TEST(slurp(target) == "");
  BOOST_TEST(run(h, {"proxy", "stop"}).out == "[ok] Proxy stopped.\n");
  BOOST_TEST(slurp(target) == "", "nothing is written through the link, not even on the way out");
}

// The daemon's stdout and stderr go to proxy.log: a link planted there refuses the start, saying why.
BOOST_AUTO_TEST_CASE(a_log_link_planted_before_start_is_never_written) {
  isolated_home h;
  const std::string home = h.home.path;
  const std::string target = home + "/root/target";
  std::ofstream(target) << "";
  BOOST_TEST_REQUIRE(::symlink(target.c_str(), (home + "/proxy.log").c_str()) == 0);
  const std::string port = std::to_string(free_port());
  const run_result start = run(h, {"proxy", "start", "--port", port, "--threads", "1"});
  if (start.code == 0) BOOST_TEST(run(h, {"proxy", "stop"}).code == 0);
  BOOST_TEST(start.code == 1);
  BOOST_TEST(start.err == "[x] cannot open " + home + "/proxy.log: it is a symbolic link\n");
  BOOST_TEST(slurp(target) == "");
}

BOOST_AUTO_TEST_CASE(a_planted_ca_without_name_constraints_is_made_again) {
  isolated_home h;
  const std::string certs = h.home.path + "/certs";
  std::filesystem::create_directories(certs);
  // A CA good for ten more years that could sign a leaf for any site.
  const std::string make_unconstrained =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 "
      "-subj '/CN=Private Connect Local CA' -keyout '" +
      certs + "/ca.key' -out '" + certs + "/ca.crt' >/dev/null 2>&1";
  BOOST_TEST_REQUIRE(std::system(make_unconstrained.c_str()) == 0);
  const std::string planted = slurp(certs + "/ca.crt");

  const std::string port = std::to_string(free_port());
  child_process p({.args = {"proxy", "start", "--foreground", "--threads", "1", "--port", port, "--https"},
                   .extra_env = h.env(),
                   .refuse_io_uring = false});
  const bool started = p.wait_for_stdout("Press Ctrl+C to stop\n", 20s);
  BOOST_TEST_REQUIRE(started, "stdout: " << p.out() << "\nstderr: " << p.err());
  p.signal(SIGINT);
  BOOST_TEST(p.wait_exit(20s).value_or(-1) == 0);
  BOOST_TEST(p.out().find("  [ok] Generated local CA\n  [!] Made a new local CA (the old one: it has no name "
                          "constraints); trust it again — run: connect proxy trust\n  [ok] Generated server "
                          "certificate\n") != std::string::npos,
             p.out());
  BOOST_TEST(p.out().find("[ok] Using local CA") == std::string::npos, p.out());
  BOOST_TEST(slurp(certs + "/ca.crt") != planted);
}

BOOST_AUTO_TEST_SUITE_END()
