// Implementation of upstream_health.hpp.
#include "upstream_health.hpp"

namespace cproxy::proxy {

upstream_health::record& upstream_health::at(const std::string& key, clock::time_point now) {
  auto [it, inserted] = upstreams_.try_emplace(key);
  if (inserted) it->second.first_seen = now;
  return it->second;
}

void upstream_health::answered(const std::string& key, clock::time_point now) {
  std::lock_guard lock(mutex_);
  at(key, now).last_answer = now;
}

void upstream_health::seen(const std::string& key, clock::time_point now) {
  std::lock_guard lock(mutex_);
  at(key, now);
}

bool upstream_health::plausibly_restarting(const std::string& key, clock::time_point now,
                                           clock::duration answered, clock::duration appeared) {
  std::lock_guard lock(mutex_);
  const record& r = at(key, now);
  if (r.last_answer && now - *r.last_answer <= answered) return true;
  return now - r.first_seen <= appeared;
}

bool upstream_health::begin_outage(const std::string& key, clock::time_point now) {
  std::lock_guard lock(mutex_);
  record& r = at(key, now);
  if (r.outage_since) return false;
  r.outage_since = now;
  return true;
}

std::optional<upstream_health::clock::time_point> upstream_health::end_outage(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto it = upstreams_.find(key);
  if (it == upstreams_.end() || !it->second.outage_since) return std::nullopt;
  const clock::time_point since = *it->second.outage_since;
  it->second.outage_since.reset();
  return since;
}

}  // namespace cproxy::proxy
