// Implementation of upstream_pool.hpp.
#include "upstream_pool.hpp"

#include "connect/io/loop_clock.hpp"

namespace cproxy::proxy {

std::unique_ptr<io::socket_stream> upstream_pool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& list = it->second;
  const auto now = io::loop_clock::now();
  while (!list.empty()) {
    idle_connection c = std::move(list.back());
    list.pop_back();
    if (now - c.since < max_idle_age) return std::move(c.stream);
  }
  return nullptr;
}

void upstream_pool::give_back(const std::string& key, std::unique_ptr<io::socket_stream> s) {
  auto& list = idle_[key];
  const auto now = io::loop_clock::now();
  // Oldest first: the ones past max_idle_age are closed here, not left open (in CLOSE_WAIT once the
  // upstream gave up on them) until a burst drains the newer ones above them.
  while (!list.empty() && (list.size() >= max_idle_per_key || now - list.front().since >= max_idle_age))
    list.pop_front();
  list.push_back({std::move(s), now});
}

int upstream_pool::preferred_family(const std::string& key) const {
  const auto it = family_.find(key);
  return it == family_.end() ? 4 : it->second;
}

}  // namespace cproxy::proxy
