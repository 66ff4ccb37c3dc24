// connect/platform/process.hpp on real child processes: a handle signals the process it names, turns
// readable when it exits, and is not given for a pid that names nothing; a live pid is named.
#include "connect/platform/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "support/unit_test.hpp"

using namespace std::chrono_literals;
using cproxy::platform::process_handle;

namespace {

// A child that waits for a signal; stopped and reaped by pid at the end of each case.
struct sleeping_child {
  pid_t pid = ::fork();
  sleeping_child() {
    if (pid == 0) {
      for (int naps = 0; naps < 600; ++naps) ::sleep(1);  // ends by itself after 10 minutes at most
      ::_exit(0);
    }
    BOOST_TEST_REQUIRE(pid > 0);
  }
  ~sleeping_child() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    reap();
  }
  int reap() {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
    return status;
  }
};

// True when `fd` turns readable within `limit`.
bool readable_within(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1 && (p.revents & POLLIN);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(platform_process)

BOOST_AUTO_TEST_CASE(a_handle_signals_its_process_and_sees_it_exit) {
  sleeping_child child;
  process_handle handle = process_handle::open(child.pid);
  BOOST_TEST_REQUIRE(handle.valid());
  BOOST_TEST(handle.fd() >= 0);
  BOOST_TEST(!handle.exited());
  BOOST_TEST(cproxy::platform::pid_alive(child.pid));

  BOOST_TEST(handle.signal(SIGTERM));
  BOOST_TEST_REQUIRE(readable_within(handle.fd(), 10s));
  BOOST_TEST(handle.exited());  // exited, not yet reaped: the pid still answers
  BOOST_TEST(cproxy::platform::pid_alive(child.pid));
  const int status = child.reap();
  BOOST_TEST(WIFSIGNALED(status));
  BOOST_TEST(WTERMSIG(status) == SIGTERM);
}

BOOST_AUTO_TEST_CASE(a_moved_handle_leaves_an_invalid_one) {
  sleeping_child child;
  process_handle first = process_handle::open(child.pid);
  BOOST_TEST_REQUIRE(first.valid());
  const int fd = first.fd();
  process_handle second = std::move(first);
  BOOST_TEST(!first.valid());
  BOOST_TEST(first.fd() == -1);
  BOOST_TEST(!first.signal(SIGTERM));
  BOOST_TEST(second.fd() == fd);
  BOOST_TEST(!second.exited());
}

BOOST_AUTO_TEST_CASE(no_handle_for_a_pid_that_names_nothing) {
  sleeping_child child;
  const pid_t pid = child.pid;
  ::kill(pid, SIGKILL);
  child.reap();
  BOOST_TEST(!cproxy::platform::pid_alive(pid));
  BOOST_TEST(!process_handle::open(pid).valid());
  BOOST_TEST(!process_handle().valid());
  BOOST_TEST(!process_handle().exited());
}

BOOST_AUTO_TEST_CASE(a_live_process_is_named) {
  // The kernel's command name is the executable's name, cut to 15 characters.
  BOOST_TEST(cproxy::platform::process_name(::getpid()).value_or("") == "unit_suite");
  BOOST_TEST(!cproxy::platform::process_name(0).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
