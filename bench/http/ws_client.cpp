// connect-http-ws: WebSocket echo round trips. Upgrades GET /ws with the given Host, checks the 101 and
// Sec-WebSocket-Accept, then sends N masked text frames one at a time and checks each echo byte for byte.
// Prints one "key value" line: rtps (round trips/s), round_trips, p50_us, p99_us.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "../relay/posix_net.hpp"
#include "http_bench.hpp"

namespace bench = cproxy::bench;
namespace hb = cproxy::bench::http;
using steady = std::chrono::steady_clock;

namespace {

[[noreturn]] void usage() {
  std::fprintf(
      stderr,
      "usage: connect-http-ws --port P [--host api.localhost] [--pings N] [--warmup N] [--size BYTES]\n");
  std::exit(2);
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "connect-http-ws: %s\n", what);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  std::string host = "api.localhost";
  unsigned pings = 20000, warmup = 500;
  std::size_t size = 32;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--port")
      port = bench::parse_port(argv[++i]);
    else if (a == "--host")
      host = argv[++i];
    else if (a == "--pings")
      pings = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    else if (a == "--warmup")
      warmup = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    else if (a == "--size")
      size = std::strtoul(argv[++i], nullptr, 10);
    else
      usage();
  }
  if (port == 0 || pings == 0 || size == 0 || size > 125) usage();  // one-byte lengths only
  // The RFC 6455 example, so a broken SHA-1 cannot agree with itself in both peers.
  if (hb::ws_accept("dGhlIHNhbXBsZSBub25jZQ==") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    fail("SHA-1 self-check failed");

  std::mt19937 rng(std::random_device{}());
  std::uint8_t nonce[16];
  for (auto& b : nonce) b = static_cast<std::uint8_t>(rng());
  const std::string key = hb::base64(nonce, sizeof nonce);

  const int fd = bench::connect_loopback(port);
  if (fd < 0) bench::die("connect-http-ws: connect");
  bench::set_nodelay(fd);
  bench::set_io_timeout(fd, 10);
  const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: " + host +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                              "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: connect-http-ws\r\n\r\n";
  if (!bench::write_all(fd, upgrade.data(), upgrade.size())) bench::die("connect-http-ws: send");
  // Read the head byte by byte: nothing may be consumed past it (the server sends no frame first anyway).
  std::string head;
  while (head.size() < 16 * 1024 && head.find("\r\n\r\n") == std::string::npos) {
    char ch;
    if (!bench::read_exact(fd, &ch, 1)) fail("connection closed during the handshake");
    head.push_back(ch);
  }
  if (head.compare(0, 12, "HTTP/1.1 101") != 0) {
    std::fprintf(stderr, "connect-http-ws: upgrade refused: %s\n", head.substr(0, head.find("\r\n")).c_str());
    return 1;
  }
  if (hb::header_value(head, "sec-websocket-accept") != hb::ws_accept(key))
    fail("wrong Sec-WebSocket-Accept");

  std::vector<char> frame(6 + size), payload(size), echo(2 + size);
  std::vector<double> lat;
  lat.reserve(pings);
  const unsigned total = warmup + pings;
  steady::time_point t0 = steady::now();
  for (unsigned i = 0; i < total; ++i) {
    if (i == warmup) t0 = steady::now();
    // A text payload that changes every round trip, so a stale or misrouted echo cannot pass.
    for (std::size_t j = 0; j < size; ++j) payload[j] = static_cast<char>('A' + (i + j) % 26);
    const std::uint32_t mask = static_cast<std::uint32_t>(rng());
    frame[0] = static_cast<char>(0x81);  // FIN, text
    frame[1] = static_cast<char>(0x80 | size);
    std::memcpy(&frame[2], &mask, 4);
    for (std::size_t j = 0; j < size; ++j) frame[6 + j] = static_cast<char>(payload[j] ^ frame[2 + j % 4]);
    const auto s = steady::now();
    if (!bench::write_all(fd, frame.data(), frame.size())) fail("send failed");
    if (!bench::read_exact(fd, echo.data(), echo.size()))
      fail("connection closed or timed out before an echo");
    if (static_cast<unsigned char>(echo[0]) != 0x81 || static_cast<unsigned char>(echo[1]) != size ||
        std::memcmp(echo.data() + 2, payload.data(), size) != 0)
      fail("the echo differs from the message");
    if (i >= warmup) lat.push_back(std::chrono::duration<double, std::micro>(steady::now() - s).count());
  }
  const double secs = hb::seconds_since(t0);
  // A clean close: close frame (masked, empty), wait for the server's close frame.
  const char close_frame[6] = {static_cast<char>(0x88), static_cast<char>(0x80), 0, 0, 0, 0};
  char reply[2];
  if (!bench::write_all(fd, close_frame, sizeof close_frame) || !bench::read_exact(fd, reply, 2) ||
      static_cast<unsigned char>(reply[0]) != 0x88)
    std::fprintf(stderr, "connect-http-ws: no close frame back\n");
  ::close(fd);
  const double p50 = hb::percentile_us(lat, 50), p99 = hb::percentile_us(lat, 99);
  std::printf("rtps %.0f round_trips %u p50_us %.1f p99_us %.1f seconds %.3f size %zu\n", pings / secs, pings,
              p50, p99, secs, size);
  return 0;
}
