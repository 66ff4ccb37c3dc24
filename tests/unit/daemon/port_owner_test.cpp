// Unit tests for connect/daemon/port_owner.hpp on real loopback sockets: the listener that --replace
// would stop is the one that holds the proxy's bind address, never another address's holder on the
// same port number. Each listener is held by a child of the test, so the pid the lookup names is known.
#include "connect/daemon/port_owner.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "connect/io/endpoint.hpp"
#include "support/unit_test.hpp"

namespace {

using cproxy::control::find_listener;
using cproxy::io::endpoint;

// A listening socket on `host`:`port` (0: ephemeral), or -1.
int listening(const std::string& host, std::uint16_t port, bool v6only = true) {
  const auto where = endpoint::from(host, port);
  BOOST_TEST_REQUIRE(where.has_value());
  const int fd = ::socket(where->family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_TEST_REQUIRE(fd >= 0);
  const int one = 1, flag = v6only ? 1 : 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (where->family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &flag, sizeof flag);
  if (::bind(fd, where->data(), where->size()) != 0 || ::listen(fd, 4) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  return endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&bound), len).port();
}

// Two listeners on one port: the first on an ephemeral port, the second on the same port, tried again
// on another port when some other socket of this machine happens to hold the second address there.
std::pair<int, int> listening_pair(const std::string& first, bool first_v6only, const std::string& second,
                                   bool second_v6only) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int a = listening(first, 0, first_v6only);
    BOOST_TEST_REQUIRE(a >= 0);
    const int b = listening(second, port_of(a), second_v6only);
    if (b >= 0) return {a, b};
    ::close(a);
  }
  BOOST_FAIL("no port where " + first + " and " + second + " both listen");
  return {-1, -1};
}

// A listening socket held only by a child process, which exits when the pipe to it closes (the
// destructor, or this test process dying) and is killed by pid besides.
class held_listener {
 public:
  explicit held_listener(int fd) {
    BOOST_TEST_REQUIRE(fd >= 0);
    port_ = port_of(fd);
    int stop[2];
    BOOST_TEST_REQUIRE(::pipe2(stop, O_CLOEXEC) == 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only this listener: a socket of another held_listener, inherited, would make this child its
      // holder in /proc too.
      const unsigned low = static_cast<unsigned>(std::min(fd, stop[0]));
      const unsigned high = static_cast<unsigned>(std::max(fd, stop[0]));
      ::close_range(3, low - 1, 0);
      ::close_range(low + 1, high - 1, 0);
      ::close_range(high + 1, ~0U, 0);
      char byte;
      while (::read(stop[0], &byte, 1) != 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(fd);  // only the child holds the listener now
    ::close(stop[0]);
    stop_ = stop[1];
    BOOST_TEST_REQUIRE(pid_ > 0);
  }
  ~held_listener() {
    ::close(stop_);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  held_listener(const held_listener&) = delete;
  held_listener& operator=(const held_listener&) = delete;

  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int stop_ = -1;
  std::uint16_t port_ = 0;
};

endpoint at(const std::string& host, std::uint16_t port) {
  return *endpoint::from(host, port);
}

pid_t owner_pid(const endpoint& want) {
  const auto owner = find_listener(want);
  return owner ? owner->pid : 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(port_owner)

// Issue 10, A4: a dev server on [::1]:P was SIGTERMed when the proxy wanted 127.0.0.1:P.
BOOST_AUTO_TEST_CASE(a_v6_loopback_listener_does_not_own_the_v4_loopback_address) {
  const held_listener dev_server(listening("::1", 0));
  BOOST_TEST(owner_pid(at("127.0.0.1", dev_server.port())) == 0);
  BOOST_TEST(owner_pid(at("::1", dev_server.port())) == dev_server.pid());
}

BOOST_AUTO_TEST_CASE(of_two_listeners_on_one_port_the_holder_of_the_wanted_address_is_named) {
  const auto [v6_fd, v4_fd] = listening_pair("::1", true, "127.0.0.1", false);
  const held_listener v6(v6_fd);
  const held_listener v4(v4_fd);
  const std::uint16_t port = v6.port();
  BOOST_TEST(owner_pid(at("127.0.0.1", port)) == v4.pid());
  BOOST_TEST(owner_pid(at("0.0.0.0", port)) == v4.pid());
  BOOST_TEST(owner_pid(at("::1", port)) == v6.pid());
  BOOST_TEST(owner_pid(at("::", port)) == v6.pid());
  BOOST_TEST(owner_pid(at("127.0.0.2", port)) == 0);
}

BOOST_AUTO_TEST_CASE(a_wildcard_listener_holds_every_address_of_its_family) {
  const held_listener any4(listening("0.0.0.0", 0));
  BOOST_TEST(owner_pid(at("127.0.0.1", any4.port())) == any4.pid());
  BOOST_TEST(owner_pid(at("::1", any4.port())) == 0);  // the proxy's IPv6 sockets are IPV6_V6ONLY
  const held_listener any6(listening("::", 0));
  BOOST_TEST(owner_pid(at("::1", any6.port())) == any6.pid());
}

// A dual-stack [::] listener (IPV6_V6ONLY=0, Node's default) also holds 127.0.0.1:P; /proc cannot say
// whether a [::] socket is dual-stack, so it is named only when no IPv4 listener can be the holder.
BOOST_AUTO_TEST_CASE(a_dual_stack_listener_is_named_only_when_no_v4_listener_holds_the_address) {
  const held_listener dual(listening("::", 0, false));
  BOOST_TEST(owner_pid(at("127.0.0.1", dual.port())) == dual.pid());

  const auto [v6_fd, v4_fd] = listening_pair("::", true, "127.0.0.1", false);
  const held_listener v6only(v6_fd);
  const held_listener v4(v4_fd);
  BOOST_TEST(owner_pid(at("127.0.0.1", v6only.port())) == v4.pid());
}

BOOST_AUTO_TEST_CASE(a_v4_mapped_listener_counts_as_its_v4_address) {
  const held_listener mapped(listening("::ffff:127.0.0.1", 0, false));
  BOOST_TEST(owner_pid(at("127.0.0.1", mapped.port())) == mapped.pid());
  BOOST_TEST(owner_pid(at("::1", mapped.port())) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
