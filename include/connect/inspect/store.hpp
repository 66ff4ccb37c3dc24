// store: the inspector's memory, bounded in records and bytes whatever the traffic. One shard per worker:
// a worker adds only to its own shard (a lock nobody else takes on the hot path, except a reader
// now and then), and readers merge the shards, newest first.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "connect/inspect/record.hpp"

namespace cproxy::inspect {

struct options {
  bool enabled = true;
  std::size_t requests = 1000;        // records kept (the newest)
  std::uint64_t body_bytes = 16384;   // per body; past it the size only
  std::size_t max_bytes = 64u << 20;  // all records together
};

struct filter {
  std::string route;          // "" any
  unsigned status = 0;        // exact status, 0 any
  unsigned status_class = 0;  // 4 for "4xx", 0 any
  std::size_t limit = 0;      // 0: all kept
  bool matches(const record& r) const noexcept;
};

using record_ptr = std::shared_ptr<const record>;

class store {
 public:
  store(options o, unsigned shards);
  const options& settings() const noexcept { return options_; }
  unsigned shards() const noexcept { return static_cast<unsigned>(shards_.size()); }

  // Adds a finished exchange on worker `index`'s behalf; gives it its id (unique, increasing per shard).
  // `reusable`, when given, receives a record this pushed out that no reader holds any more, emptied
  // (record::reuse) for one of the worker's next exchanges; it stays null when there is none.
  std::uint64_t add(unsigned index, std::shared_ptr<record> r, std::shared_ptr<record>* reusable = nullptr);
  std::uint64_t add(unsigned index, record r) { return add(index, std::make_shared<record>(std::move(r))); }
  // Kept records matching `f`, newest first.
  std::vector<record_ptr> list(const filter& f) const;
  record_ptr find(std::uint64_t id) const;
  record_ptr find_replay(const std::string& token) const;
  // Records added since `cursor` (one position per shard, updated), oldest first: each exactly once.
  std::vector<record_ptr> since(std::vector<std::uint64_t>* cursor) const;
  void clear();

 private:
  struct shard {
    mutable std::mutex mu;                        // the worker that owns the shard, and a reader now and then
    std::deque<std::shared_ptr<record>> records;  // readers get them as record_ptr (const)
    std::size_t bytes = 0;
    std::uint64_t next = 0;
  };
  options options_;
  std::size_t shard_bytes_;
  std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace cproxy::inspect
