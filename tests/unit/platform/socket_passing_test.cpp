// connect/platform/peer_credentials.hpp and descriptor_passing.hpp on a real Unix socket pair: the peer
// is this process as the kernel knows it, and a descriptor sent with bytes arrives usable and
// close-on-exec, taken only where the caller asks for it.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "connect/platform/descriptor_passing.hpp"
#include "connect/platform/peer_credentials.hpp"
#include "support/unit_test.hpp"

namespace {

struct socket_pair {
  int fds[2] = {-1, -1};
  socket_pair() { BOOST_TEST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0); }
  ~socket_pair() {
    for (const int fd : fds) ::close(fd);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(platform_socket_passing)

BOOST_AUTO_TEST_CASE(the_peer_of_a_unix_socket_is_the_process_behind_it) {
  socket_pair pair;
  const auto peer = cproxy::platform::unix_peer(pair.fds[0]);
  BOOST_TEST_REQUIRE(peer.has_value());
  BOOST_TEST(peer->pid == ::getpid());
  BOOST_TEST(peer->uid == ::getuid());

  int pipe_fds[2];
  BOOST_TEST_REQUIRE(::pipe(pipe_fds) == 0);
  BOOST_TEST(!cproxy::platform::unix_peer(pipe_fds[0]).has_value());  // not a socket
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

BOOST_AUTO_TEST_CASE(a_descriptor_sent_with_bytes_arrives_usable_and_close_on_exec) {
  socket_pair pair;
  int pipe_fds[2];
  BOOST_TEST_REQUIRE(::pipe(pipe_fds) == 0);  // without O_CLOEXEC: the received copy must get it anyway
  BOOST_TEST(cproxy::platform::send_with_descriptor(pair.fds[0], "hello\n", 6, pipe_fds[1]) == 6);
  ::close(pipe_fds[1]);

  char buf[16] = {};
  int received = -1;
  BOOST_TEST(cproxy::platform::receive_with_descriptor(pair.fds[1], buf, sizeof buf, &received) == 6);
  BOOST_TEST(std::string(buf, 6) == "hello\n");
  BOOST_TEST_REQUIRE(received >= 0);
  BOOST_TEST((::fcntl(received, F_GETFD) & FD_CLOEXEC) != 0);
  BOOST_TEST(::write(received, "x", 1) == 1);  // the pipe's write end, passed across
  ::close(received);
  char got = 0;
  BOOST_TEST(::read(pipe_fds[0], &got, 1) == 1);
  BOOST_TEST(got == 'x');
  ::close(pipe_fds[0]);
}

BOOST_AUTO_TEST_CASE(an_unasked_descriptor_is_closed_and_an_empty_socket_does_not_block) {
  socket_pair pair;
  int pipe_fds[2];
  BOOST_TEST_REQUIRE(::pipe(pipe_fds) == 0);
  BOOST_TEST(cproxy::platform::send_with_descriptor(pair.fds[0], "a", 1, pipe_fds[1]) == 1);
  ::close(pipe_fds[1]);
  char buf[4];
  BOOST_TEST(cproxy::platform::receive_with_descriptor(pair.fds[1], buf, sizeof buf, nullptr) == 1);
  // Every write end is closed now (ours, and the received one), so the pipe reads end-of-file.
  char got = 0;
  BOOST_TEST(::read(pipe_fds[0], &got, 1) == 0);
  ::close(pipe_fds[0]);

  int received = -1;
  errno = 0;
  BOOST_TEST(cproxy::platform::receive_with_descriptor(pair.fds[1], buf, sizeof buf, &received) == -1);
  BOOST_TEST((errno == EAGAIN || errno == EWOULDBLOCK));
  BOOST_TEST(received == -1);
}

BOOST_AUTO_TEST_SUITE_END()
