// buffer_ring: a provided-buffer ring (kernel >= 5.19). Reads that select a buffer take one only when
// data arrives, so an idle connection holds no memory. liburing 2.3 has no io_uring_setup_buf_ring
// (2.4 has): the ring memory is mapped and registered here by hand. Remove when liburing >= 2.4.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace cproxy::io::uring {

class buffer_ring {
 public:
  // Returns nullptr when the kernel does not support buffer rings.
  static std::unique_ptr<buffer_ring> create(io_uring* ring, std::uint16_t group, unsigned count,
                                             unsigned buffer_size);
  ~buffer_ring();
  buffer_ring(const buffer_ring&) = delete;
  buffer_ring& operator=(const buffer_ring&) = delete;

  std::uint16_t group() const noexcept { return group_; }
  unsigned buffer_size() const noexcept { return buffer_size_; }
  std::byte* buffer(std::uint16_t id) const noexcept {
    return storage_.get() + std::size_t{id} * buffer_size_;
  }
  // Hands buffer `id` back to the kernel.
  void give_back(std::uint16_t id) noexcept;

 private:
  buffer_ring(io_uring* ring, std::uint16_t group, unsigned count, unsigned buffer_size);
  io_uring* ring_;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::uint16_t group_;
  unsigned count_;
  unsigned buffer_size_;
  std::unique_ptr<std::byte[]> storage_;
};

}  // namespace cproxy::io::uring
