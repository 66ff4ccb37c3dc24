// The proactor contract every io backend implements (uring: io_uring; asio: Boost.Asio's epoll, kqueue
// or IOCP). Connection code never sees these classes: it uses socket, acceptor, timer and stream,
// which start operations through them. See docs/io-backends.md for the rules a backend follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>

#include "connect/coro/task.hpp"
#include "connect/io/operation.hpp"

namespace cproxy::io {

#ifdef _WIN32
using native_handle_type = std::uintptr_t;
#else
using native_handle_type = int;
#endif

enum class backend_kind { uring, asio };
std::string_view to_string(backend_kind k) noexcept;

// What a backend can do on this machine, found by probing at start.
struct capabilities {
  bool splice = false;            // socket -> pipe -> socket relays without copying to user space
  bool provided_buffers = false;  // reads pick a buffer at completion (idle connections hold none)
  bool multishot_accept = false;
  bool defer_taskrun = false;  // completions run only when the worker enters the kernel
};

// How often one context took each data path: CI asserts that the fast paths really ran, and the worker
// pool logs the sums at stop. Plain integers, written and read only on the context's own thread (or
// after that thread has ended), so counting costs an add.
struct io_counters {
  std::uint64_t splice_calls = 0;           // splice_to calls that went through a pipe
  std::uint64_t spliced_bytes = 0;          // bytes those calls moved without entering user space
  std::uint64_t copy_fallback_bytes = 0;    // bytes splice_to moved by copying (asio, or no splice)
  std::uint64_t provided_buffer_recvs = 0;  // recv_any served from the kernel-provided buffer ring
  std::uint64_t pooled_buffer_recvs = 0;    // recv_any served from the backend's own buffer pool
  std::uint64_t received_bytes = 0;         // bytes read into user space by recv and recv_any
  std::uint64_t deadline_lists = 0;         // uring: timeout lists made (one per rounded timeout in use)

  io_counters& operator+=(const io_counters& o) noexcept {
    splice_calls += o.splice_calls;
    spliced_bytes += o.spliced_bytes;
    copy_fallback_bytes += o.copy_fallback_bytes;
    provided_buffer_recvs += o.provided_buffer_recvs;
    pooled_buffer_recvs += o.pooled_buffer_recvs;
    received_bytes += o.received_bytes;
    deadline_lists += o.deadline_lists;
    return *this;
  }
};

// Starting an operation never completes it inline: the awaiting coroutine is resumed later from the
// context's loop, so `start` can be called from await_suspend without growing the stack.
class socket_impl {
 public:
  virtual ~socket_impl() = default;
  virtual void start(recv_op& op) = 0;
  virtual void start(recv_any_op& op) = 0;
  virtual void start(send_op& op) = 0;
  virtual void start(writev_op& op) = 0;
  virtual void start(connect_op& op) = 0;
  // Moves up to `max` bytes from this socket to `to` without copying them to user space where the
  // backend can; 0 bytes means EOF. Falls back to copying through a leased buffer. `idle` (0: none)
  // bounds each wait for either socket: a peer that stalls without closing gets timed_out.
  virtual coro::task<io_result> splice_to(socket_impl& to, std::size_t max, duration idle) = 0;
  // See socket::quiet.
  virtual coro::task<bool> quiet() = 0;
  // Requests cancellation of every operation in flight on this socket; each still completes.
  virtual void cancel() noexcept = 0;
  virtual void shutdown_send() noexcept = 0;
  virtual native_handle_type native_handle() const noexcept = 0;
};

class acceptor_impl {
 public:
  virtual ~acceptor_impl() = default;
  virtual void start(accept_op& op) = 0;
  virtual void cancel() noexcept = 0;
};

class timer_impl {
 public:
  virtual ~timer_impl() = default;
  virtual void start(wait_op& op) = 0;
  virtual void cancel() noexcept = 0;
};

// One per worker thread. Everything except post() and stop() must be called on the thread that
// created the context (io_uring's SINGLE_ISSUER requires it); that thread runs it.
class context {
 public:
  virtual ~context() = default;
  virtual backend_kind kind() const noexcept = 0;
  virtual const capabilities& caps() const noexcept = 0;
  // On the context's thread, or after it has ended (see io_counters).
  const io_counters& counters() const noexcept { return counters_; }
  // For the backend's objects, on the context's thread.
  io_counters& count() noexcept { return counters_; }

  // Runs completions and posted functions until stop().
  virtual void run() = 0;
  // Any thread: run() returns after the current batch. Operations still in flight stay suspended;
  // orderly owners cancel and join their work first (see worker).
  virtual void stop() noexcept = 0;
  // Any thread: runs `fn` on the context's thread.
  virtual void post(std::function<void()> fn) = 0;
  // Cancels every operation in flight on this context, and fails operations started from now on.
  virtual void cancel_all() noexcept = 0;

  virtual std::unique_ptr<socket_impl> open_socket(int family, std::error_code& ec) = 0;
  // Takes ownership of a connected, non-blocking socket.
  virtual std::unique_ptr<socket_impl> adopt_socket(native_handle_type fd) = 0;
  // Takes ownership of a listening socket (pass a dup() to share one listener between workers).
  virtual std::unique_ptr<acceptor_impl> adopt_acceptor(native_handle_type fd) = 0;
  virtual std::unique_ptr<timer_impl> make_timer() = 0;

 private:
  io_counters counters_;
};

}  // namespace cproxy::io
