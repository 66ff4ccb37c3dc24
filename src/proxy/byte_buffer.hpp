// byte_buffer: bytes read from a peer and not used yet. Unlike std::string it grows without zeroing
// the space a read is about to fill (a memset per read showed up at 6% of a keep-alive profile), and
// consuming from the front is a pointer move until the buffer is compacted. Storage of the size of one
// head read is recycled per thread (block_cache).
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>

namespace cproxy::proxy {

// Blocks of `block_size` bytes kept per thread for reuse. Each exchange reads its response head into a
// fresh buffer of this size; from malloc that is past the thread cache's sizes, so it took the slow path
// (bins, consolidation) every time: about 5% of a keep-alive profile. Under ASan every block is fresh,
// so a use after free is still caught.
class block_cache {
 public:
  static constexpr std::size_t block_size = 16 * 1024;

  static char* take() {
#if !defined(__SANITIZE_ADDRESS__)
    lists& l = local();
    if (l.count > 0) return l.blocks[--l.count];
#endif
    return new char[block_size];  // default-initialised: no zeroing
  }
  static void give_back(char* block) noexcept {
#if !defined(__SANITIZE_ADDRESS__)
    lists& l = local();
    if (l.count < max_kept) {
      l.blocks[l.count++] = block;
      return;
    }
#endif
    delete[] block;
  }

 private:
  static constexpr std::size_t max_kept = 64;  // 1 MiB per thread at most
  struct lists {
    char* blocks[max_kept] = {};
    std::size_t count = 0;
    lists() = default;
    lists(const lists&) = delete;
    lists& operator=(const lists&) = delete;
    ~lists() {
      while (count > 0) delete[] blocks[--count];
    }
  };
  static lists& local() {
    thread_local lists l;
    return l;
  }
};

class byte_buffer {
 public:
  byte_buffer() = default;
  byte_buffer(byte_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        capacity_(std::exchange(other.capacity_, 0)),
        begin_(std::exchange(other.begin_, 0)),
        end_(std::exchange(other.end_, 0)) {}
  byte_buffer& operator=(byte_buffer&& other) noexcept {
    if (this != &other) {
      free_storage();
      data_ = std::exchange(other.data_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
      begin_ = std::exchange(other.begin_, 0);
      end_ = std::exchange(other.end_, 0);
    }
    return *this;
  }
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;
  ~byte_buffer() { free_storage(); }

  std::string_view view() const noexcept { return {data_ + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }

  // Room for at least `n` more bytes after the current ones; commit() what a read put there.
  std::span<std::byte> prepare(std::size_t n) {
    if (capacity_ - end_ < n) {
      if (begin_ > 0 && capacity_ - size() >= n) {
        std::memmove(data_, data_ + begin_, size());  // size() > 0: begin_ == end_ resets both
      } else {
        std::size_t grown = capacity_ ? capacity_ : n;
        while (grown < size() + n) grown *= 2;
        char* bigger = grown == block_cache::block_size ? block_cache::take() : new char[grown];
        if (size() > 0) std::memcpy(bigger, data_ + begin_, size());
        free_storage();
        data_ = bigger;
        capacity_ = grown;
      }
      end_ -= begin_;
      begin_ = 0;
    }
    return {reinterpret_cast<std::byte*>(data_ + end_), capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Frees the storage when no bytes are held (an idle keep-alive connection keeps none).
  void release() noexcept {
    if (!empty()) return;
    free_storage();
    data_ = nullptr;
    capacity_ = 0;
  }
  void append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(prepare(s.size()).data(), s.data(), s.size());
    commit(s.size());
  }

 private:
  void free_storage() noexcept {
    if (capacity_ == block_cache::block_size) {
      block_cache::give_back(data_);
    } else {
      delete[] data_;
    }
  }

  char* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace cproxy::proxy
