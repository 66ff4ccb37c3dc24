// connect-relay-load: the client side of the relay bench, blocking POSIX. Throughput mode sends a stream
// per connection and waits for the sink's byte count; latency mode ping-pongs small messages on one
// connection. Prints one line of "key value" pairs for bench/run-relay.sh; exits 1 if bytes went missing.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "posix_net.hpp"

namespace bench = cproxy::bench;
using steady = std::chrono::steady_clock;

namespace {

struct options {
  std::uint16_t port = 0;
  std::string mode = "throughput";
  std::uint64_t mib = 64;  // per transfer
  unsigned reps = 20;
  unsigned pings = 20000;
  unsigned warmup = 500;  // pings not measured: first-touch of buffers, slow start, frequency ramp
  std::size_t size = 64;
};

constexpr std::size_t chunk = std::size_t{1} << 20;

// One transfer: connect, tag, `bytes` of payload, half-close, wait for the count, wait for EOF.
bool transfer(const options& o, const std::vector<std::byte>& payload, std::uint64_t bytes) {
  const int fd = bench::connect_loopback(o.port);
  if (fd < 0) {
    std::perror("connect-relay-load: connect");
    return false;
  }
  bench::set_io_timeout(fd, 30);
  bool ok = bench::write_all(fd, &bench::tag_throughput, 1);
  for (std::uint64_t left = bytes; ok && left > 0;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, payload.size()));
    ok = bench::write_all(fd, payload.data(), n);
    left -= n;
  }
  ok = ok && ::shutdown(fd, SHUT_WR) == 0;
  std::byte ack[8];
  ok = ok && bench::read_exact(fd, ack, sizeof ack);
  if (ok && bench::get_u64_le(ack) != bytes) {
    std::fprintf(stderr, "connect-relay-load: sink counted %llu bytes, sent %llu\n",
                 static_cast<unsigned long long>(bench::get_u64_le(ack)),
                 static_cast<unsigned long long>(bytes));
    ok = false;
  }
  char extra = 0;
  // The relay must pass the sink's close on, too: anything but EOF here is a relay bug.
  ok = ok && ::recv(fd, &extra, 1, 0) == 0;
  if (!ok) std::fprintf(stderr, "connect-relay-load: transfer failed (errno %d)\n", errno);
  ::close(fd);
  return ok;
}

int run_throughput(const options& o) {
  std::vector<std::byte> payload(chunk);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i * 131 + 7);
  const std::uint64_t bytes = o.mib << 20;
  double best = 0, worst = 1e300;
  const auto start = steady::now();
  for (unsigned r = 0; r < o.reps; ++r) {
    const auto t0 = steady::now();
    if (!transfer(o, payload, bytes)) return 1;
    const double s = std::chrono::duration<double>(steady::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
    worst = std::min(worst, static_cast<double>(bytes) / s / 1e9);
  }
  const double seconds = std::chrono::duration<double>(steady::now() - start).count();
  const double total = static_cast<double>(bytes) * o.reps;
  std::printf("throughput reps %u bytes %.0f seconds %.6f gbps %.4f min_gbps %.4f max_gbps %.4f\n", o.reps,
              total, seconds, total / seconds / 1e9, worst, best);
  return 0;
}

int run_latency(const options& o) {
  const int fd = bench::connect_loopback(o.port);
  if (fd < 0) {
    std::perror("connect-relay-load: connect");
    return 1;
  }
  bench::set_nodelay(fd);
  bench::set_io_timeout(fd, 30);
  if (!bench::write_all(fd, &bench::tag_echo, 1)) return 1;
  std::vector<std::byte> out(o.size), in(o.size);
  std::vector<double> us;
  us.reserve(o.pings);
  for (unsigned i = 0; i < o.warmup + o.pings; ++i) {
    // A different payload each time, so that an echo of stale bytes is caught.
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = static_cast<std::byte>(i + k);
    const auto t0 = steady::now();
    if (!bench::write_all(fd, out.data(), out.size()) || !bench::read_exact(fd, in.data(), in.size())) {
      std::fprintf(stderr, "connect-relay-load: ping %u failed (errno %d)\n", i, errno);
      return 1;
    }
    const auto t1 = steady::now();
    if (in != out) {
      std::fprintf(stderr, "connect-relay-load: ping %u echoed different bytes\n", i);
      return 1;
    }
    if (i >= o.warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  ::shutdown(fd, SHUT_WR);
  char extra = 0;
  const bool eof = ::recv(fd, &extra, 1, 0) == 0;
  ::close(fd);
  if (!eof) {
    std::fprintf(stderr, "connect-relay-load: no EOF after the last echo\n");
    return 1;
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    const std::size_t rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(us.size())));
    return us[std::clamp<std::size_t>(rank, 1, us.size()) - 1];
  };
  std::printf("latency pings %u size %zu p50_us %.2f p99_us %.2f max_us %.2f\n", o.pings, o.size, pct(0.50),
              pct(0.99), us.back());
  return 0;
}

unsigned long long number(const char* text, const char* what) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0) {
    std::fprintf(stderr, "connect-relay-load: bad %s '%s'\n", what, text);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value == nullptr) {
      std::fprintf(stderr, "connect-relay-load: %s needs a value\n", argv[i]);
      return 2;
    }
    ++i;
    if (arg == "--port") {
      o.port = bench::parse_port(value);
    } else if (arg == "--mode") {
      o.mode = value;
    } else if (arg == "--mib") {
      o.mib = number(value, "--mib");
    } else if (arg == "--reps") {
      o.reps = static_cast<unsigned>(number(value, "--reps"));
    } else if (arg == "--pings") {
      o.pings = static_cast<unsigned>(number(value, "--pings"));
    } else if (arg == "--warmup") {
      o.warmup = static_cast<unsigned>(std::strtoul(value, nullptr, 10));
    } else if (arg == "--size") {
      o.size = static_cast<std::size_t>(number(value, "--size"));
    } else {
      std::fprintf(stderr,
                   "usage: connect-relay-load --port P [--mode throughput|latency] [--mib 64] [--reps 20]\n"
                   "                          [--pings 20000] [--warmup 500] [--size 64]\n");
      return 2;
    }
  }
  if (o.port == 0) {
    std::fprintf(stderr, "connect-relay-load: --port is required\n");
    return 2;
  }
  if (o.mode == "throughput") return run_throughput(o);
  if (o.mode == "latency") return run_latency(o);
  std::fprintf(stderr, "connect-relay-load: unknown mode '%s'\n", o.mode.c_str());
  return 2;
}
