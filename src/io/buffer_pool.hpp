// buffer_pool: fixed-size read buffers kept per context and reused, for the reads whose buffer the
// backend picks (asio always; uring when its provided ring runs dry or the kernel has none).
// Single-threaded: it belongs to its context's thread.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace cproxy::io::detail {

class buffer_pool {
 public:
  buffer_pool(std::size_t buffer_size, std::size_t max_kept)
      : buffer_size_(buffer_size), max_kept_(max_kept) {
    free_.reserve(max_kept);  // give_back() then never allocates
  }
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;
  ~buffer_pool() {
    for (std::byte* b : free_) delete[] b;
  }

  std::size_t buffer_size() const noexcept { return buffer_size_; }

  std::byte* take() {
    if (free_.empty()) return new std::byte[buffer_size_];
    std::byte* b = free_.back();
    free_.pop_back();
    return b;
  }

  void give_back(std::byte* b) noexcept {
    if (free_.size() < max_kept_) {
      free_.push_back(b);
    } else {
      delete[] b;
    }
  }

 private:
  std::size_t buffer_size_;
  std::size_t max_kept_;
  std::vector<std::byte*> free_;
};

}  // namespace cproxy::io::detail
