// upstream_health: what the whole proxy remembers of each upstream address for restart-holding: when it
// last answered, when the proxy first saw it, and whether an outage is on (so each is logged once).
// Shared by every worker (thread-safe); not on the hot path: workers report a success at most once a
// second per upstream (pooled_connector throttles), and everything else happens on a refusal.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace cproxy::proxy {

class upstream_health {
 public:
  using clock = std::chrono::steady_clock;

  // Why one registry for the whole proxy and not one per worker: a restart must be recognised whichever
  // worker the next request lands on. A browser's requests spread over the workers, and a worker that
  // never talked to the service would otherwise fail it at once, so the same restart would be held or
  // not by chance.

  // `key` accepted a connection at `now`.
  void answered(const std::string& key, clock::time_point now);
  // The route was there at `now` (the proxy's start: its routes all appear then).
  void seen(const std::string& key, clock::time_point now);
  // A refusal of `key` at `now` is plausibly a restart or a start: it answered within `answered`, or
  // was first seen within `appeared` (a never-seen key counts as first seen now).
  bool plausibly_restarting(const std::string& key, clock::time_point now, clock::duration answered,
                            clock::duration appeared);

  // Holding began for `key`: true for the first request of an outage (the one that logs it).
  bool begin_outage(const std::string& key, clock::time_point now);
  // The outage of `key` ended (it answered, or a hold ran out): its start when this call ended it,
  // nullopt when it was over already (another request logged the end).
  std::optional<clock::time_point> end_outage(const std::string& key);

 private:
  struct record {
    std::optional<clock::time_point> last_answer;
    clock::time_point first_seen;
    std::optional<clock::time_point> outage_since;
  };
  record& at(const std::string& key, clock::time_point now);  // with mutex_ held
  std::mutex mutex_;
  std::unordered_map<std::string, record> upstreams_;
};

}  // namespace cproxy::proxy
