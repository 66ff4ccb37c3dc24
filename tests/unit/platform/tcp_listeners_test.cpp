// connect/platform/tcp_listeners.hpp on real loopback sockets: a listener of this process is named with
// its address, pid and uid; a connected socket on the port is not a listener; `wanted` filters.
#include "connect/platform/tcp_listeners.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "support/unit_test.hpp"

namespace {

struct loopback_listener {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::uint16_t port = 0;
  loopback_listener() {
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_TEST_REQUIRE(::listen(fd, 4) == 0);
    BOOST_TEST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~loopback_listener() { ::close(fd); }
};

const auto everything = [](const cproxy::platform::ip_address&) { return true; };

}  // namespace

BOOST_AUTO_TEST_SUITE(platform_tcp_listeners)

BOOST_AUTO_TEST_CASE(a_listener_of_this_process_is_named) {
  loopback_listener l;
  // A client on the port: its socket (and the accepted one) are not listeners.
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(l.port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST_REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);

  const auto found = cproxy::platform::tcp_listeners(l.port, everything);
  BOOST_TEST_REQUIRE(found.size() == 1u);
  BOOST_TEST(found[0].pid == ::getpid());
  BOOST_TEST(found[0].uid == ::getuid());
  BOOST_TEST(found[0].address.v4);
  const unsigned char loopback[4] = {127, 0, 0, 1};
  BOOST_TEST(std::equal(loopback, loopback + 4, found[0].address.bytes.begin()));
  ::close(client);
}

BOOST_AUTO_TEST_CASE(wanted_filters_by_address) {
  loopback_listener l;
  const auto none = cproxy::platform::tcp_listeners(
      l.port, [](const cproxy::platform::ip_address& a) { return !a.v4; });  // IPv6 only: not ours
  BOOST_TEST(none.empty());
}

BOOST_AUTO_TEST_CASE(an_ipv4_mapped_address_reads_as_ipv4) {
  const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1};
  const auto a = cproxy::platform::ip_address::from_v6(mapped);
  BOOST_TEST(a.v4);
  BOOST_TEST(a.bytes[0] == 127);
  BOOST_TEST(!a.unspecified());
  const unsigned char any[16] = {};
  const auto b = cproxy::platform::ip_address::from_v6(any);
  BOOST_TEST(!b.v4);
  BOOST_TEST(b.unspecified());
}

BOOST_AUTO_TEST_SUITE_END()
