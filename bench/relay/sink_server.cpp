// connect-relay-sink: the upstream of the relay bench. Blocking POSIX, one thread per connection; the
// first byte picks the mode: 'T' reads to EOF 1 MiB at a time and answers the byte count, 'E' echoes.
// Usage: connect-relay-sink [--port P]   (prints "listening P" when ready; stop it with SIGTERM)
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include "posix_net.hpp"

namespace bench = cproxy::bench;

namespace {

constexpr std::size_t read_size = std::size_t{1} << 20;

void drain_and_ack(int fd) {
  std::vector<std::byte> buf(read_size);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;  // reset or timeout: no ack, the client reports the failure
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
  }
  std::byte ack[8];
  bench::put_u64_le(ack, total);
  bench::write_all(fd, ack, sizeof ack);
}

void echo(int fd) {
  bench::set_nodelay(fd);
  std::vector<std::byte> buf(read_size);
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (!bench::write_all(fd, buf.data(), static_cast<std::size_t>(n))) return;
  }
}

void serve(int fd) {
  bench::set_io_timeout(fd, 30);
  char tag = 0;
  if (bench::read_exact(fd, &tag, 1)) {
    if (tag == bench::tag_throughput) drain_and_ack(fd);
    if (tag == bench::tag_echo) echo(fd);
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      const std::string_view value = argv[++i];
      port = bench::parse_port(value);
      if (port == 0 && value != "0") {
        std::fprintf(stderr, "connect-relay-sink: bad port '%s'\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: connect-relay-sink [--port P]\n");
      return 2;
    }
  }

  std::uint16_t bound = 0;
  const int listener = bench::listen_loopback(port, &bound);
  std::printf("listening %u\n", static_cast<unsigned>(bound));
  std::fflush(stdout);

  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      bench::die("accept");
    }
    std::thread(serve, fd).detach();
  }
}
