// Buffers handed to the io layer. const_buffer has the layout of a POSIX iovec so that a gather write
// passes an array of them to the kernel unchanged. buffer_lease is a read buffer owned by the backend
// (an io_uring provided buffer, or a pooled one on asio): a connection waiting for bytes holds none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace cproxy::io {

struct const_buffer {
  const void* data = nullptr;
  std::size_t size = 0;
};

// Who takes a leased buffer back. Implemented by the backends.
class lease_owner {
 public:
  virtual void release_lease(std::uint32_t id, std::byte* data) noexcept = 0;

 protected:
  ~lease_owner() = default;
};

class buffer_lease {
 public:
  buffer_lease() noexcept = default;
  buffer_lease(lease_owner* owner, std::uint32_t id, std::byte* data, std::size_t size) noexcept
      : owner_(owner), id_(id), base_(data), data_(data), size_(size) {}
  buffer_lease(buffer_lease&& o) noexcept
      : owner_(std::exchange(o.owner_, nullptr)),
        id_(o.id_),
        base_(std::exchange(o.base_, nullptr)),
        data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)) {}
  buffer_lease& operator=(buffer_lease&& o) noexcept {
    if (this != &o) {
      release();
      owner_ = std::exchange(o.owner_, nullptr);
      id_ = o.id_;
      base_ = std::exchange(o.base_, nullptr);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  buffer_lease(const buffer_lease&) = delete;
  buffer_lease& operator=(const buffer_lease&) = delete;
  ~buffer_lease() { release(); }

  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Drops the first n bytes (already sent, or parsed) without giving the buffer back.
  void consume(std::size_t n) noexcept {
    data_ += n;
    size_ -= n;
  }

  void release() noexcept {
    if (owner_) owner_->release_lease(id_, base_);
    owner_ = nullptr;
    base_ = data_ = nullptr;
    size_ = 0;
  }

 private:
  lease_owner* owner_ = nullptr;
  std::uint32_t id_ = 0;
  std::byte* base_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace cproxy::io
