// connect-http-download: one keep-alive connection that GETs /64m N times with a given Host, reading
// 1 MiB at a time (wrk reads 8 KiB, which caps it), spot-checking the body. Prints one "key value" line:
// gbps (1e9 body bytes/s), bytes, seconds. Exits 1 on a short, wrong or failed download.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "../relay/posix_net.hpp"
#include "http_bench.hpp"

namespace bench = cproxy::bench;
namespace hb = cproxy::bench::http;

namespace {

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: connect-http-download --port P [--host api.localhost] [--path /64m] [--reps N]\n");
  std::exit(2);
}

constexpr std::size_t read_size = std::size_t{1} << 20;

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  std::string host = "api.localhost";
  std::string path = "/64m";
  unsigned reps = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--port")
      port = bench::parse_port(argv[++i]);
    else if (a == "--host")
      host = argv[++i];
    else if (a == "--path")
      path = argv[++i];
    else if (a == "--reps")
      reps = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    else
      usage();
  }
  if (port == 0 || reps == 0) usage();

  const int fd = bench::connect_loopback(port);
  if (fd < 0) bench::die("connect-http-download: connect");
  bench::set_io_timeout(fd, 30);
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: connect-http-download\r\n\r\n";
  std::vector<char> buf(read_size);
  std::string head;         // bytes of a response head read so far
  std::uint64_t total = 0;  // body bytes, all responses
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t carry_off = 0, carry_len = 0;  // body bytes that arrived with the head, in buf
  for (unsigned r = 0; r < reps; ++r) {
    if (!bench::write_all(fd, request.data(), request.size())) bench::die("connect-http-download: send");
    // The head: read until "\r\n\r\n"; whatever follows in the same read is body.
    head.clear();
    std::size_t end = std::string::npos;
    while (end == std::string::npos) {
      const ssize_t n = ::recv(fd, buf.data(), read_size, 0);
      if (n <= 0) {
        std::fprintf(stderr, "connect-http-download: connection %s before a response head (rep %u)\n",
                     n == 0 ? "closed" : "failed", r);
        return 1;
      }
      const std::size_t before = head.size();
      head.append(buf.data(), static_cast<std::size_t>(std::min<ssize_t>(n, 64 * 1024)));
      end = head.find("\r\n\r\n");
      if (end == std::string::npos && head.size() > 32 * 1024) {
        std::fprintf(stderr, "connect-http-download: response head too large\n");
        return 1;
      }
      if (end != std::string::npos) {
        carry_off = end + 4 - before;
        carry_len = static_cast<std::size_t>(n) - carry_off;
        head.resize(end + 4);
      }
    }
    if (head.compare(0, 12, "HTTP/1.1 200") != 0) {
      std::fprintf(stderr, "connect-http-download: unexpected response: %.*s\n",
                   static_cast<int>(head.find("\r\n")), head.c_str());
      return 1;
    }
    const std::string_view cl = hb::header_value(head, "content-length");
    if (cl.empty()) {
      std::fprintf(stderr, "connect-http-download: no Content-Length in the response\n");
      return 1;
    }
    const std::uint64_t length = std::strtoull(std::string(cl).c_str(), nullptr, 10);
    std::uint64_t got = 0;
    // Spot check: the first byte of every read must be the pattern's byte at that offset.
    const auto check = [&](const char* p, std::size_t n) {
      if (n > 0 && (*p != hb::body_byte(got) || p[n - 1] != hb::body_byte(got + n - 1))) {
        std::fprintf(stderr, "connect-http-download: wrong body byte near offset %llu (rep %u)\n",
                     static_cast<unsigned long long>(got), r);
        std::exit(1);
      }
      got += n;
    };
    if (carry_len > length) {
      std::fprintf(stderr, "connect-http-download: more bytes than Content-Length (pipelining?)\n");
      return 1;
    }
    check(buf.data() + carry_off, carry_len);
    while (got < length) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(read_size, length - got));
      const ssize_t n = ::recv(fd, buf.data(), want, 0);
      if (n <= 0) {
        std::fprintf(stderr, "connect-http-download: connection %s after %llu of %llu bytes (rep %u)\n",
                     n == 0 ? "closed" : "failed", static_cast<unsigned long long>(got),
                     static_cast<unsigned long long>(length), r);
        return 1;
      }
      check(buf.data(), static_cast<std::size_t>(n));
    }
    total += got;
  }
  const double secs = hb::seconds_since(t0);
  ::close(fd);
  std::printf("gbps %.3f bytes %llu seconds %.3f reps %u\n", static_cast<double>(total) / secs / 1e9,
              static_cast<unsigned long long>(total), secs, reps);
  return 0;
}
