// Implementation of store.hpp: per-worker deques of shared records, trimmed to the count and byte bounds
// as each record is added; readers copy the pointers under each shard's lock and merge.
#include "connect/inspect/store.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>

namespace cproxy::inspect {

bool filter::matches(const record& r) const noexcept {
  if (!route.empty() && r.route != route) return false;
  if (status != 0 && r.status != status) return false;
  if (status_class != 0 && r.status / 100 != status_class) return false;
  return true;
}

store::store(options o, unsigned shards) : options_(o) {
  const unsigned n = std::max(1u, shards);
  shard_bytes_ = std::max<std::size_t>(options_.max_bytes / n, 1);
  for (unsigned i = 0; i < n; ++i) shards_.push_back(std::make_unique<shard>());
}

std::uint64_t store::add(unsigned index, std::shared_ptr<record> r, std::shared_ptr<record>* reusable) {
  shard& s = *shards_[index % shards_.size()];
  const std::size_t size = r->footprint();
  // The id says which shard (low part) and its order there, so ids are unique without a shared counter.
  std::lock_guard lock(s.mu);
  r->id = ++s.next * shards_.size() + index % shards_.size() + 1;
  const std::uint64_t id = r->id;
  s.records.push_back(std::move(r));
  s.bytes += size;
  while (!s.records.empty() && (s.records.size() > options_.requests || s.bytes > shard_bytes_)) {
    std::shared_ptr<record>& oldest = s.records.front();
    s.bytes -= oldest->footprint();
    // Readers copy pointers under this lock only, so a count of 1 seen here stays 1. The fence pairs
    // with the release of the last reader's copy: its reads happen before the reuse's writes.
    if (reusable && !*reusable && oldest.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);
      oldest->reuse();
      *reusable = std::move(oldest);
    }
    s.records.pop_front();
  }
  // Once the store is full, its oldest records are the next to go and to be filled again, and they were
  // last touched a thousand exchanges ago: cold in every cache. The misses on them were about 4% of the
  // proxy's CPU per keep-alive request (docs/performance.md). Fetching them one exchange ahead takes
  // those misses off the path, in two steps: the second-oldest record itself now, and the buffers of
  // the oldest, whose record the previous call fetched.
  if (!s.records.empty() && s.records.size() + 1 >= options_.requests) {
    s.records.front()->prefetch_buffers();
    if (s.records.size() > 1) s.records[1]->prefetch_self();
  }
  return id;
}

std::vector<record_ptr> store::list(const filter& f) const {
  std::vector<record_ptr> all;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    for (const auto& r : s->records)
      if (f.matches(*r)) all.push_back(r);
  }
  std::sort(all.begin(), all.end(), [](const record_ptr& a, const record_ptr& b) {
    return a->time != b->time ? a->time > b->time : a->id > b->id;
  });
  const std::size_t keep =
      std::min(all.size(), f.limit == 0 ? options_.requests : std::min(f.limit, options_.requests));
  all.resize(keep);
  return all;
}

record_ptr store::find(std::uint64_t id) const {
  if (id == 0) return nullptr;
  const shard& s = *shards_[(id - 1) % shards_.size()];
  std::lock_guard lock(s.mu);
  for (const auto& r : s.records)
    if (r->id == id) return r;
  return nullptr;
}

record_ptr store::find_replay(const std::string& token) const {
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    for (const auto& r : s->records)
      if (r->replay_token == token) return r;
  }
  return nullptr;
}

std::vector<record_ptr> store::since(std::vector<std::uint64_t>* cursor) const {
  cursor->resize(shards_.size(), 0);
  std::vector<record_ptr> out;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    // Ids only grow within a shard: walk back from the newest to the cursor, not over every record
    // (an open page asks ten times a second, under the lock its worker takes per exchange).
    std::lock_guard lock(shards_[i]->mu);
    const auto& records = shards_[i]->records;
    auto first_new = records.end();
    while (first_new != records.begin() && (*std::prev(first_new))->id > (*cursor)[i]) --first_new;
    out.insert(out.end(), first_new, records.end());
    if (!records.empty() && records.back()->id > (*cursor)[i]) (*cursor)[i] = records.back()->id;
  }
  std::sort(out.begin(), out.end(),
            [](const record_ptr& a, const record_ptr& b) { return a->time < b->time; });
  return out;
}

void store::clear() {
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    s->records.clear();
    s->bytes = 0;
  }
}

}  // namespace cproxy::inspect
