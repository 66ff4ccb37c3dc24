// upstream_pool: idle keep-alive connections to upstreams, per worker (never shared between threads),
// keyed by the upstream's address. Also remembers which address of `localhost` answered last.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "connect/io/stream.hpp"

namespace cproxy::proxy {

class upstream_pool {
 public:
  // The newest pooled connection young enough to be kept open by the upstream, or null. The caller
  // checks it is quiet (io::socket::quiet) before sending on it: that check is an io operation. Pooled
  // as the stream the exchange used (a plain socket_stream), so reusing one allocates nothing.
  std::unique_ptr<io::socket_stream> take(const std::string& key);
  void give_back(const std::string& key, std::unique_ptr<io::socket_stream> s);
  void clear() { idle_.clear(); }

  // For "localhost" routes: 6 when ::1 answered last, else 4.
  int preferred_family(const std::string& key) const;
  void remember_family(const std::string& key, int family) { family_[key] = family; }

 private:
  struct idle_connection {
    std::unique_ptr<io::socket_stream> stream;
    std::chrono::steady_clock::time_point since;
  };
  // Above the concurrency a keep-alive load brings (wrk -c50): with 32, connections beyond it were
  // closed on return and dialled again a moment later (connect + close were 13% of the proxy's CPU).
  // HTTP/2 brings more: 128 streams per connection, so h2load -c10 -m100 keeps ~1,000 requests in
  // flight; with 256, 38% of its requests dialled a new upstream connection.
  static constexpr std::size_t max_idle_per_key = 1024;
  // Node's default keepAliveTimeout is 5 s: older idle connections are likely closed by now.
  static constexpr std::chrono::seconds max_idle_age{4};
  std::unordered_map<std::string, std::deque<idle_connection>> idle_;  // oldest first
  std::unordered_map<std::string, int> family_;
};

}  // namespace cproxy::proxy
