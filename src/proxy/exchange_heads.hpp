// exchange_heads: the heads of one exchange, parsed (request, response) and built (as forwarded, as
// sent to the client), in storage a worker keeps for its next exchanges. An exchange leases one once
// its request begins and gives it back when it ends, so a busy worker's exchanges allocate nothing for
// their heads (field vectors, long values and head strings keep their capacity), and a connection
// waiting for its next request holds none.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "connect/http/head.hpp"

namespace cproxy::proxy {

struct exchange_heads {
  http::request_head request;
  http::response_head response;
  std::string upstream_head;  // the request head as forwarded
  std::string client_head;    // the response head as sent to the client, with a small body

  // The bytes its buffers hold in all (capacity, not size): what keeping it for reuse costs.
  std::size_t footprint() const noexcept;
};

class exchange_heads_pool;

// Gives the heads back to their pool when the lease ends.
struct give_back {
  exchange_heads_pool* pool = nullptr;
  void operator()(exchange_heads* heads) const noexcept;
};
using heads_lease = std::unique_ptr<exchange_heads, give_back>;

// One worker's spare heads; touched only on its thread, and it outlives the worker's connections.
class exchange_heads_pool {
 public:
  // As many as exchanges may begin in a loop turn before one ends; heads that grew past max_kept_bytes
  // (a long head, a large first body chunk) are freed instead, so the pool holds at most 64 x 8 KiB.
  static constexpr std::size_t max_spares = 64;
  static constexpr std::size_t max_kept_bytes = 8 * 1024;

  exchange_heads_pool() { spares_.reserve(max_spares); }
  heads_lease take();
  std::size_t spares() const noexcept { return spares_.size(); }

 private:
  friend struct give_back;
  void give(exchange_heads* heads) noexcept;
  std::vector<std::unique_ptr<exchange_heads>> spares_;
};

}  // namespace cproxy::proxy
