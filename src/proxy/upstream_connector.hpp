// upstream_connector: where the connect_upstream stage gets a connection to a route's service. The
// proxy's own is pooled_connector (this worker's idle keep-alive connections, else a new dial); tests
// put in-memory upstreams behind the same interface to inject a failure at any step.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "connect/coro/task.hpp"
#include "connect/io/stream.hpp"
#include "connect/route/table.hpp"
#include "failure.hpp"
#include "upstream_pool.hpp"

namespace cproxy::io {
class context;
}

namespace cproxy::proxy {

class upstream_holds;
class upstream_health;

// The address a route dials, as pools, holds and upstream_health know it: "host:port".
std::string upstream_key(const route::route& r);

struct dial_result {
  std::unique_ptr<io::stream> stream;  // null when `failed`
  bool reused = false;                 // taken from the pool: it may have been closed by the upstream
  std::optional<failure> failed;       // refused, timed out, or not dialable
};

class upstream_connector {
 public:
  virtual ~upstream_connector() = default;
  // A connection to `r`'s service: an idle pooled one when `allow_pooled`, else a new one within `timeout`.
  virtual coro::task<dial_result> connect(const route::route* r, io::duration timeout, bool allow_pooled) = 0;
  // A connection that finished an exchange cleanly and may carry another request.
  virtual void give_back(const route::route* r, std::unique_ptr<io::stream> s) = 0;
  // Closes every idle connection (the worker is stopping).
  virtual void clear() noexcept = 0;
  // This worker's restart-holding lines (hold.hpp); null: refused connects are never held.
  virtual upstream_holds* holds() { return nullptr; }
};

class pooled_connector final : public upstream_connector {
 public:
  // `health` (shared by every worker, outliving this connector) enables restart-holding; null: none.
  pooled_connector(io::context* ctx, upstream_health* health = nullptr);
  ~pooled_connector() override;
  coro::task<dial_result> connect(const route::route* r, io::duration timeout, bool allow_pooled) override;
  void give_back(const route::route* r, std::unique_ptr<io::stream> s) override;
  void clear() noexcept override { pool_.clear(); }
  upstream_holds* holds() override { return holds_.get(); }

 private:
  // Tells upstream_health that `key` answered, at most once a second per upstream from this worker
  // (the registry takes a lock shared by all workers).
  void note_answer(const std::string& key);
  io::context* ctx_;
  upstream_health* health_;
  upstream_pool pool_;
  std::unique_ptr<upstream_holds> holds_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> reported_;
};

}  // namespace cproxy::proxy
