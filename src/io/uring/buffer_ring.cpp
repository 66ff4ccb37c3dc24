// Implementation of buffer_ring.hpp.
#include "buffer_ring.hpp"

#include <sys/mman.h>

#include "asan.hpp"

namespace cproxy::io::uring {

buffer_ring::buffer_ring(io_uring* ring, std::uint16_t group, unsigned count, unsigned buffer_size)
    : ring_(ring), group_(group), count_(count), buffer_size_(buffer_size) {}

std::unique_ptr<buffer_ring> buffer_ring::create(io_uring* ring, std::uint16_t group, unsigned count,
                                                 unsigned buffer_size) {
  std::unique_ptr<buffer_ring> self(new buffer_ring(ring, group, count, buffer_size));
  self->ring_bytes_ = count * sizeof(io_uring_buf);
  void* mem = ::mmap(nullptr, self->ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  self->br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(self->br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
  reg.ring_entries = count;
  reg.bgid = group;
  if (io_uring_register_buf_ring(ring, &reg, 0) != 0) {
    ::munmap(mem, self->ring_bytes_);
    self->br_ = nullptr;
    return nullptr;
  }
  self->storage_.reset(new std::byte[std::size_t{count} * buffer_size]);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned id = 0; id < count; ++id) {
    io_uring_buf_ring_add(self->br_, self->buffer(static_cast<std::uint16_t>(id)), buffer_size,
                          static_cast<unsigned short>(id), mask, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(self->br_, static_cast<int>(count));
  asan::poison(self->storage_.get(), std::size_t{count} * buffer_size);
  return self;
}

buffer_ring::~buffer_ring() {
  if (!br_) return;
  asan::unpoison(storage_.get(), std::size_t{count_} * buffer_size_);
  io_uring_unregister_buf_ring(ring_, group_);
  ::munmap(br_, ring_bytes_);
}

void buffer_ring::give_back(std::uint16_t id) noexcept {
  asan::poison(buffer(id), buffer_size_);
  io_uring_buf_ring_add(br_, buffer(id), buffer_size_, id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace cproxy::io::uring
