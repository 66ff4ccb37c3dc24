// Restart-holding (product.md, "Restarting upstreams"): a request whose upstream refused waits and
// retries instead of getting the 502, while the upstream is plausibly restarting. This is the part of
// the connect_upstream stage that waits; upstream_holds is each worker's set of waiting lines.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "client_side.hpp"
#include "connect/coro/task.hpp"
#include "exchange.hpp"
#include "upstream_connector.hpp"
#include "upstream_health.hpp"

namespace cproxy::proxy {

// A request body larger than this is not held: the 502 comes at once (the contract's 1 MiB).
inline constexpr std::uint64_t max_held_body = 1024 * 1024;

struct hold_waiter;

// The requests one worker holds for one upstream. One of them, the prober, retries the connect with
// backoff; the others wait on a timer until their hold ends or the prober wakes them (by cancelling that
// timer), so a held request costs a frame, a timer and a pending read on its client (which notices a
// hang-up), no thread and no polling of its own.
struct hold_line {
  hold_waiter* prober = nullptr;
  std::list<hold_waiter*> waiting;  // arrival order: the order they are released in
};

// Per worker (touched only on its thread), owned by its connector.
class upstream_holds {
 public:
  upstream_holds(io::context* ctx, upstream_health* health) : ctx_(ctx), health_(health) {}
  io::context& ctx() { return *ctx_; }
  upstream_health& health() { return *health_; }
  hold_line& line(const std::string& key) { return lines_[key]; }
  // Forgets `key`'s line once nobody is in it.
  void tidy(const std::string& key);

 private:
  io::context* ctx_;
  upstream_health* health_;
  std::unordered_map<std::string, hold_line> lines_;
};

// `refused` is the connect_upstream stage's refused dial. Holds the request while the rule allows,
// and returns the connection once the upstream answers, or the failure to answer with: the refusal
// (marked as logged: the outage has its own lines), what a later dial ran into, route_gone (the name
// is no longer routed: the 404 at once; a name routed elsewhere is held there instead, `ex->route`
// then names the new route), or client_gone (the client hung up while held: nothing was sent).
coro::task<dial_result> hold_upstream(client_side* c, exchange* ex, dial_result refused);

}  // namespace cproxy::proxy
