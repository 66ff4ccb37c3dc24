// copy_some: the portable way to move bytes from one socket to another, through a leased buffer. Used
// by backends that cannot splice, and by the uring backend when the kernel refuses splice (EINVAL).
#pragma once

#include <cstddef>

#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"

namespace cproxy::io::detail {

// No backend leases a read buffer larger than this.
inline constexpr std::size_t max_lease_size = 64 * 1024;

// Moves at most `max` bytes; 0 bytes with no error means EOF on `from`.
coro::task<io_result> copy_some(socket_impl* from, socket_impl* to, std::size_t max, duration idle);

}  // namespace cproxy::io::detail
