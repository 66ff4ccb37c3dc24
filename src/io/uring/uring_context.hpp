// uring_context: the io_uring backend's context. One ring per worker thread;
// completions are reaped in a batch, the CQ advanced, and only then are
// coroutines resumed from a ready queue. Internal to the backend: connection
// code sees io::context.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../buffer_pool.hpp"
#include "buffer_ring.hpp"
#include "connect/io/backend.hpp"
#include "pipe_pool.hpp"

namespace cproxy::io::uring {

// The low two bits of a CQE's user_data say what it completes (operations are
// 8-byte aligned).
enum : std::uint64_t {
  tag_operation = 0,  // an operation's own completion
  tag_handler = 1,    // a cqe_handler: multishot accept, the wake-up read
  tag_mask = 3,
};
// user_data 0: a completion nobody waits for (cancel requests, timeout
// removals).

class cqe_handler {
 public:
  virtual void on_cqe(int res, std::uint32_t flags) = 0;

 protected:
  ~cqe_handler() = default;
};

class uring_context final : public context, public lease_owner, private cqe_handler {
 public:
  // Throws std::system_error when io_uring cannot be set up.
  uring_context();
  ~uring_context() override;

  backend_kind kind() const noexcept override { return backend_kind::uring; }
  const capabilities& caps() const noexcept override { return caps_; }
  void run() override;
  void stop() noexcept override;
  void post(std::function<void()> fn) override;
  void cancel_all() noexcept override;
  std::unique_ptr<socket_impl> open_socket(int family, std::error_code& ec) override;
  std::unique_ptr<socket_impl> adopt_socket(native_handle_type fd) override;
  std::unique_ptr<acceptor_impl> adopt_acceptor(native_handle_type fd) override;
  std::unique_ptr<timer_impl> make_timer() override;

  // For the backend's objects.
  io_uring_sqe* get_sqe() noexcept;  // never null: submits when the SQ is full
  // Starts `op`: `prep` fills the SQE; with a timeout the operation goes into a
  // deadline list.
  template <class Prep>
  void start(operation& op, duration timeout, Prep&& prep) noexcept;
  void complete_now(operation& op,
                    int res) noexcept;  // through the ready queue, without the kernel
  // Closes a descriptor: on the loop's thread while it runs, as an SQE that
  // goes with the turn's io_uring_enter (one syscall fewer per socket);
  // anywhere else, at once.
  void close_fd(int fd) noexcept;
  bool closing() const noexcept { return closing_; }
  buffer_ring* buffers() noexcept { return buffers_.get(); }
  pipe_pool& pipes() noexcept { return pipes_; }
  void disable_splice() noexcept { caps_.splice = false; }
  // Keeps an object alive until its last completion arrives (an acceptor whose
  // multishot still runs).
  void bury(std::unique_ptr<cqe_handler, void (*)(cqe_handler*)> handler);
  void unbury(cqe_handler* handler) noexcept;

  // Read buffers leased when no provided buffer is available.
  std::byte* take_heap_buffer() { return heap_buffers_.take(); }
  static constexpr std::uint32_t heap_lease = 0xffffffffu;
  // 64 KiB: loopback moves 64 KiB segments, and the relay bench measured 32 KiB
  // reads at 1.4x the CPU per byte (docs/performance.md).
  static constexpr unsigned buffer_size = 64 * 1024;
  void release_lease(std::uint32_t id, std::byte* data) noexcept override;

 private:
  void on_cqe(int res,
              std::uint32_t flags) override;  // the wake-up eventfd read
  void arm_wakeup() noexcept;
  void reap() noexcept;
  void wait() noexcept;
  void dispatch(const io_uring_cqe& cqe) noexcept;
  void push_ready(operation& op) noexcept;
  void run_ready();
  void run_posted();

  io_uring ring_{};
  unsigned features_ = 0;  // IORING_FEAT_* of the ring
  capabilities caps_;
  std::unique_ptr<buffer_ring> buffers_;
  pipe_pool pipes_;
  detail::buffer_pool heap_buffers_{buffer_size, 64};

  operation* ready_head_ = nullptr;
  operation* ready_tail_ = nullptr;
  bool closing_ = false;

  // Timeouts. An operation with one goes into the list of its duration, which
  // stays ordered by deadline (every entry was added at a later turn than the
  // ones before it), so adding and removing are O(1); once per loop turn, after
  // one clock read, the expired heads are cancelled and the wait for
  // completions is bounded by the nearest deadline. This replaced a linked
  // timeout SQE per operation: a second SQE and CQE, a kernel allocation and an
  // hrtimer armed and cancelled each (docs/performance.md has the profile).
  struct deadline_list {
    duration timeout{};
    operation* head = nullptr;
    operation* tail = nullptr;
  };
  static duration deadline_step(duration timeout) noexcept;
  void add_deadline(operation& op, duration timeout);
  void remove_deadline(operation& op) noexcept;
  void expire_deadlines() noexcept;
  std::vector<deadline_list> deadlines_;
  std::chrono::steady_clock::time_point now_;  // read once per loop turn
  std::thread::id loop_thread_{};              // the thread inside run(), if any

  int wake_fd_ = -1;
  std::uint64_t wake_value_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  // Set with posted_ under the lock: the loop looks at it every turn and takes the lock only when it is
  // set (an uncontended lock per turn was 1% of a WebSocket round trip's CPU).
  std::atomic<bool> has_posted_{false};
  std::vector<std::unique_ptr<cqe_handler, void (*)(cqe_handler*)>> buried_;
};

template <class Prep>
void uring_context::start(operation& op, duration timeout, Prep&& prep) noexcept {
  if (closing_) {
    complete_now(op, -ECANCELED);
    return;
  }
  io_uring_sqe* sqe = get_sqe();
  prep(sqe);
  io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&op) | tag_operation);
  op.timed_out = false;
  op.pending = 1;
  if (timeout.count() > 0) add_deadline(op, timeout);
}

}  // namespace cproxy::io::uring
