// connect-inspect-bench: what capturing one exchange costs the worker that served it: the record built
// as the hooks build it (the forwarded head's field lines copied, the response fields joined into one string,
// a small body kept) and added to the worker's shard of a full store (1000 records, so every add also
// evicts). Usage: connect-inspect-bench [N]   prints CPU ns per exchange (median of 5 runs of N, default
// 200000). Build: c++ -std=c++20 -O2 -Iinclude bench/inspect/capture_bench.cpp src/inspect/record.cpp
//        src/inspect/store.cpp -o connect-inspect-bench   (bench/run-inspect.sh does this)
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "connect/inspect/store.hpp"

namespace inspect = cproxy::inspect;

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  const std::string forwarded =
      "GET /api/users?page=2 HTTP/1.1\r\nHost: api.localhost:3456\r\nUser-Agent: Mozilla/5.0 (X11; Linux "
      "x86_64) AppleWebKit/537.36 Chrome/120.0\r\nAccept: application/json\r\nAccept-Encoding: gzip, "
      "deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: "
      "http\r\nX-Forwarded-Host: api.localhost:3456\r\nX-Forwarded-Port: 3456\r\nx-private-connect-proxy: "
      "1\r\nx-private-connect-route: api\r\n\r\n";
  const std::vector<std::pair<std::string, std::string>> response_fields{
      {"Content-Type", "application/json; charset=utf-8"},
      {"Content-Length", "18"},
      {"Date", "Mon, 07 Dec 2026 04:00:00 GMT"},
      {"Connection", "keep-alive"},
      {"Keep-Alive", "timeout=5"},
      {"ETag", "W/\"12-abcdef\""}};
  const std::string body = "{\"users\":[1,2,3]}\n";
  inspect::store store(inspect::options{}, 1);
  std::vector<double> runs;
  for (int run = 0; run < 5; ++run) {
    // CPU time of this thread: what the capture costs, whatever else the machine runs meanwhile.
    timespec start{}, end{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    for (long i = 0; i < n; ++i) {
      auto r = std::make_unique<inspect::record>();
      r->request_head.assign(inspect::field_lines_of(forwarded));
      std::size_t size = 0;
      for (const auto& [name, value] : response_fields) size += name.size() + value.size() + 4;
      r->response_head.reserve(size);
      for (const auto& [name, value] : response_fields) {
        r->response_head += name;
        r->response_head += ": ";
        r->response_head += value;
        r->response_head += "\r\n";
      }
      r->response_body.add(body, 16384);
      r->route = "api";
      r->method = "GET";
      r->host = "api.localhost:3456";
      r->path = "/api/users?page=2";
      r->time = std::chrono::system_clock::now();
      store.add(0, std::move(*r));
    }
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
    const double took = static_cast<double>(end.tv_sec - start.tv_sec) * 1e9 +
                        static_cast<double>(end.tv_nsec - start.tv_nsec);
    runs.push_back(took / static_cast<double>(n));
  }
  std::sort(runs.begin(), runs.end());
  std::printf("capture: %.0f ns CPU per exchange (median of 5 x %ld; min %.0f, max %.0f)\n", runs[2], n,
              runs[0], runs[4]);
}
