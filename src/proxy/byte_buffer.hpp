// byte_buffer: bytes read from a peer and not used yet. Unlike std::string it grows without zeroing
// the space a read is about to fill (a memset per read showed up at 6% of a keep-alive profile), and
// consuming from the front is a pointer move until the buffer is compacted.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace cproxy::proxy {

class byte_buffer {
 public:
  std::string_view view() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }

  // Room for at least `n` more bytes after the current ones; commit() what a read put there.
  std::span<std::byte> prepare(std::size_t n) {
    if (capacity_ - end_ < n) {
      if (begin_ > 0 && capacity_ - size() >= n) {
        std::memmove(data_.get(), data_.get() + begin_, size());  // size() > 0: begin_ == end_ resets both
      } else {
        std::size_t grown = capacity_ ? capacity_ : n;
        while (grown < size() + n) grown *= 2;
        std::unique_ptr<char[]> bigger(new char[grown]);  // default-initialised: no zeroing
        if (size() > 0) std::memcpy(bigger.get(), data_.get() + begin_, size());
        data_ = std::move(bigger);
        capacity_ = grown;
      }
      end_ -= begin_;
      begin_ = 0;
    }
    return {reinterpret_cast<std::byte*>(data_.get() + end_), capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Frees the storage when no bytes are held (an idle keep-alive connection keeps none).
  void release() noexcept {
    if (!empty()) return;
    data_.reset();
    capacity_ = 0;
  }
  void append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(prepare(s.size()).data(), s.data(), s.size());
    commit(s.size());
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace cproxy::proxy
