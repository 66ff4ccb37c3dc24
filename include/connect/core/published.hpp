// published<T>: one writer publishes immutable snapshots; each worker thread reads through its own
// reader, which costs one atomic load per access and takes the lock only when a new version exists.
// This is how the route table reaches the workers without locks on the hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

namespace cproxy {

template <class T>
class published {
 public:
  explicit published(std::shared_ptr<const T> initial) : current_(std::move(initial)) {}

  // Any thread. Readers see the new snapshot on their next get(); the old one lives while in use.
  void publish(std::shared_ptr<const T> next) {
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    version_.fetch_add(1, std::memory_order_release);
  }

  std::shared_ptr<const T> load() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  // One per worker thread; not shared between threads.
  class reader {
   public:
    explicit reader(const published& source) : source_(&source) { refresh(); }
    const T& get() {
      if (source_->version_.load(std::memory_order_acquire) != seen_) refresh();
      return *cached_;
    }
    // Keeps the snapshot alive past later publications (a request holds its table while it runs).
    std::shared_ptr<const T> hold() {
      get();
      return cached_;
    }

   private:
    void refresh() {
      std::lock_guard lock(source_->mutex_);
      seen_ = source_->version_.load(std::memory_order_relaxed);
      cached_ = source_->current_;
    }
    const published* source_;
    std::uint64_t seen_ = 0;
    std::shared_ptr<const T> cached_;
  };

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> current_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace cproxy
