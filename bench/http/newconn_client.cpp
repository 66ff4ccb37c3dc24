// connect-http-newconn: a new connection per request (wrk cannot). T threads loop for D seconds: connect,
// GET / with Connection: close, read to EOF, check the 18-byte body. Prints rps, requests, errors, p50_us,
// p99_us (connect to EOF) on one line; exits 1 only if no request succeeded.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../relay/posix_net.hpp"
#include "http_bench.hpp"

namespace bench = cproxy::bench;
namespace hb = cproxy::bench::http;
using steady = std::chrono::steady_clock;

namespace {

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: connect-http-newconn --port P [--host api.localhost] [--threads 4] [--seconds 5]\n");
  std::exit(2);
}

struct worker_result {
  std::uint64_t ok = 0, errors = 0;
  std::vector<double> latency_us;
  std::string first_error;
};

// One request on a fresh connection; false (with a reason) if anything but the exact answer came back.
bool one_request(std::uint16_t port, const std::string& request, std::string& why) {
  const int fd = bench::connect_loopback(port);
  if (fd < 0) {
    why = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  bench::set_io_timeout(fd, 10);
  bool ok = bench::write_all(fd, request.data(), request.size());
  std::string answer;
  char buf[4096];
  while (ok) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      why = std::string("recv: ") + std::strerror(errno);
      ok = false;
      break;
    }
    answer.append(buf, static_cast<std::size_t>(n));
    if (answer.size() > 64 * 1024) {
      why = "answer too large";
      ok = false;
    }
  }
  ::close(fd);
  if (!ok) return false;
  const std::size_t end = answer.find("\r\n\r\n");
  if (answer.compare(0, 12, "HTTP/1.1 200") != 0 || end == std::string::npos ||
      std::string_view(answer).substr(end + 4) != hb::small_body) {
    why = "unexpected answer: " + answer.substr(0, answer.find("\r\n"));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  std::string host = "api.localhost";
  unsigned threads = 4;
  double seconds = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--port")
      port = bench::parse_port(argv[++i]);
    else if (a == "--host")
      host = argv[++i];
    else if (a == "--threads")
      threads = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    else if (a == "--seconds")
      seconds = std::strtod(argv[++i], nullptr);
    else
      usage();
  }
  if (port == 0 || threads == 0 || !(seconds > 0)) usage();
  const std::string request =
      "GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: connect-http-newconn\r\nConnection: close\r\n\r\n";

  std::vector<worker_result> results(threads);
  std::atomic<bool> stop{false};
  const auto t0 = steady::now();
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      worker_result& w = results[t];
      w.latency_us.reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto s = steady::now();
        std::string why;
        if (one_request(port, request, why)) {
          ++w.ok;
          w.latency_us.push_back(std::chrono::duration<double, std::micro>(steady::now() - s).count());
        } else {
          if (w.errors++ == 0) w.first_error = why;
          if (w.errors > 100 && w.errors > w.ok) break;  // broken target: don't spin for the whole run
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double secs = hb::seconds_since(t0);

  std::uint64_t ok = 0, errors = 0;
  std::vector<double> all;
  for (auto& w : results) {
    ok += w.ok;
    errors += w.errors;
    all.insert(all.end(), w.latency_us.begin(), w.latency_us.end());
    if (!w.first_error.empty()) std::fprintf(stderr, "connect-http-newconn: %s\n", w.first_error.c_str());
  }
  const double p50 = hb::percentile_us(all, 50), p99 = hb::percentile_us(all, 99);
  std::printf("rps %.0f requests %llu errors %llu p50_us %.1f p99_us %.1f seconds %.3f threads %u\n",
              static_cast<double>(ok) / secs, static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(errors), p50, p99, secs, threads);
  return ok > 0 ? 0 : 1;  // errors are reported, not fatal: the run script puts them in its table
}
