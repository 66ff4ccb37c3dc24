// connect-relay-ref: the yardstick for connect-relay-bench, a plain blocking relay with two threads per
// connection (one per direction; copy = recv/send through a 64 KiB buffer, splice = splice(2) through a
// pipe). Not the io core: it shows what relaying costs on this machine without it. Same options.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "posix_net.hpp"

namespace bench = cproxy::bench;

namespace {

std::size_t copy_size = 64 * 1024;  // --buffer: set once in main, before any thread starts

struct connection {
  int client = -1;
  int upstream = -1;
  ~connection() {
    ::close(client);
    ::close(upstream);
  }
};

// Copies until EOF, then half-closes; on an error shuts both sockets down so the other direction ends.
void pump_copy(int from, int to) {
  std::vector<std::byte> buf(copy_size);
  for (;;) {
    const ssize_t n = ::recv(from, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      ::shutdown(to, SHUT_WR);
      return;
    }
    if (n < 0 || !bench::write_all(to, buf.data(), static_cast<std::size_t>(n))) break;
  }
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
}

void pump_splice(int from, int to) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return pump_copy(from, to);
  ::fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20);
  bool failed = false;
  for (;;) {
    const ssize_t in = ::splice(from, nullptr, pipe_fds[1], nullptr, 1 << 20, SPLICE_F_MOVE);
    if (in < 0 && errno == EINTR) continue;
    if (in == 0) {
      ::shutdown(to, SHUT_WR);
      break;
    }
    if (in < 0) {
      failed = true;
      break;
    }
    for (ssize_t left = in; left > 0;) {
      const ssize_t out =
          ::splice(pipe_fds[0], nullptr, to, nullptr, static_cast<std::size_t>(left), SPLICE_F_MOVE);
      if (out < 0 && errno == EINTR) continue;
      if (out <= 0) {
        failed = true;
        break;
      }
      left -= out;
    }
    if (failed) break;
  }
  if (failed) {
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

void run_direction(std::shared_ptr<connection> c, bool upstream_to_client, bool splice) {
  const int from = upstream_to_client ? c->upstream : c->client;
  const int to = upstream_to_client ? c->client : c->upstream;
  if (splice) {
    pump_splice(from, to);
  } else {
    pump_copy(from, to);
  }
}

void accept_loop(int listener, std::uint16_t upstream, bool splice) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      bench::die("accept");
    }
    auto c = std::make_shared<connection>();
    c->client = fd;
    c->upstream = bench::connect_loopback(upstream);
    if (c->upstream < 0) continue;  // closes the client
    bench::set_nodelay(c->client);
    bench::set_nodelay(c->upstream);
    std::thread(run_direction, c, false, splice).detach();
    std::thread(run_direction, c, true, splice).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t listen_port = 0, upstream = 0;
  bool splice = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i], value = argv[i + 1];
    if (arg == "--listen") {
      listen_port = bench::parse_port(value);
    } else if (arg == "--upstream") {
      upstream = bench::parse_port(value);
    } else if (arg == "--mode") {
      splice = value == "splice";
    } else if (arg == "--buffer") {
      copy_size = std::strtoul(argv[i + 1], nullptr, 10);
      if (copy_size == 0) copy_size = 64 * 1024;
    } else if (arg != "--io" && arg != "--threads") {  // accepted for the same command line; unused
      std::fprintf(
          stderr,
          "usage: connect-relay-ref --upstream PORT [--listen PORT] [--mode copy|splice] [--buffer BYTES]\n");
      return 2;
    }
  }
  if (upstream == 0 || argc % 2 == 0) {
    std::fprintf(
        stderr,
        "usage: connect-relay-ref --upstream PORT [--listen PORT] [--mode copy|splice] [--buffer BYTES]\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::uint16_t bound = 0;
  const int listener = bench::listen_loopback(listen_port, &bound);
  std::fprintf(stderr,
               "relay: reference, blocking, two threads per connection, mode %s, %zu-byte copy buffer\n",
               splice ? "splice" : "copy", copy_size);
  std::printf("listening %u\n", static_cast<unsigned>(bound));
  std::fflush(stdout);
  std::thread(accept_loop, listener, upstream, splice).detach();

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "relay: stopped by signal %d\n", sig);
  std::fflush(stderr);
  std::_Exit(0);  // detached threads may be blocked in accept or recv: no orderly teardown to wait for
}
