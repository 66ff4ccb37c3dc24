// The state of one in-flight io operation. It lives in the frame of the
// coroutine that awaits it, and that frame stays suspended until the backend
// has delivered every completion it owes: so the kernel never writes into, or
// reads from, memory that is gone.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "connect/io/buffer.hpp"
#include "connect/io/endpoint.hpp"
#include "connect/io/result.hpp"

namespace cproxy::io {

using duration = std::chrono::milliseconds;  // zero means "no timeout"

struct operation {
  std::coroutine_handle<> waiter{};
  int res = 0;  // >= 0: a count or a descriptor; < 0: a negated errno
  std::uint32_t flags = 0;
  std::uint8_t pending = 0;  // completions the backend still owes
  bool timed_out = false;
  operation* next = nullptr;  // the backend's ready queue
  // The io_uring backend's deadline list of operations with a timeout (see
  // uring_context::start).
  operation* deadline_prev = nullptr;
  operation* deadline_next = nullptr;
  std::chrono::steady_clock::time_point deadline{};
  std::uint32_t deadline_list = 0;  // 1 + index of the list it is in; 0: in none
  // Run by the backend when the last completion arrives, before the waiter
  // resumes (turn a picked buffer into a lease, unpoison memory under ASan).
  // Returns false if it re-issued the operation.
  bool (*on_complete)(operation&) = nullptr;
  // Storage the backend needs for as long as the kernel may look at it (a
  // timespec, a msghdr).
  alignas(8) std::byte scratch[80];

  std::error_code error() const noexcept {
    if (timed_out && res == -ECANCELED) return std::make_error_code(std::errc::timed_out);
    return error_from_res(res);
  }
  io_result bytes_result() const noexcept {
    return res < 0 ? io_result{error(), 0} : io_result{{}, static_cast<std::size_t>(res)};
  }
};

class socket_impl;

struct recv_op : operation {
  std::span<std::byte> buffer;
  duration timeout{};
  io_result take() const noexcept { return bytes_result(); }
};

struct recv_any_op : operation {
  duration timeout{};
  buffer_lease lease;
};

struct send_op : operation {
  std::span<const std::byte> buffer;
  duration timeout{};
  io_result take() const noexcept { return bytes_result(); }
};

struct writev_op : operation {
  std::span<const const_buffer> buffers;
  duration timeout{};
  io_result take() const noexcept { return bytes_result(); }
};

struct connect_op : operation {
  endpoint peer;
  duration timeout{};
  std::error_code take() const noexcept { return error(); }
};

struct accept_op : operation {
  std::unique_ptr<socket_impl> accepted;
};

struct wait_op : operation {
  duration delay{};
  // Elapsing is success; a cancelled wait reports operation_canceled.
  std::error_code take() const noexcept { return res == -ETIME ? std::error_code{} : error(); }
};

}  // namespace cproxy::io
