// Implementation of uring_context.hpp: ring set-up with graceful degradation,
// the run loop, wake-ups.
#include "uring_context.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <system_error>

#include "../copy_relay.hpp"
#include "../tcp_options.hpp"
#include "connect/core/log.hpp"
#include "connect/io/loop_clock.hpp"
#include "uring_objects.hpp"

namespace cproxy::io::uring {
namespace {

constexpr unsigned sq_entries = 256;
constexpr unsigned cq_entries = sq_entries * 8;  // multishot accepts post many CQEs per SQE
constexpr std::uint16_t buffer_group = 1;
static_assert(uring_context::buffer_size <= detail::max_lease_size, "copy_some relies on the bound");
constexpr unsigned provided_buffers = 64;  // 4 MiB per worker at 64 KiB each

// Tries the best set-up flags first and drops them one step at a time (older
// kernels refuse them).
int init_ring(io_uring& ring, capabilities& caps, unsigned& features) {
  const unsigned attempts[] = {
      IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
      IORING_SETUP_CQSIZE,
  };
  int rc = -EINVAL;
  for (const unsigned flags : attempts) {
    io_uring_params params{};
    params.flags = flags;
    params.cq_entries = cq_entries;
    rc = io_uring_queue_init_params(sq_entries, &ring, &params);
    if (rc == 0) {
      caps.defer_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
      // Without NODROP an overflowing CQ loses completions, and with them
      // suspended coroutines.
      features = params.features;
      if (!(params.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&ring);
        return -ENOTSUP;
      }
      return 0;
    }
    if (rc != -EINVAL) return rc;
  }
  return rc;
}

}  // namespace

uring_context::uring_context() : now_(std::chrono::steady_clock::now()) {
  deadlines_.reserve(8);
  const int rc = init_ring(ring_, caps_, features_);
  if (rc != 0) throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init_params");

  caps_.splice = true;  // splice(2) from the loop (uring_splice.cpp); an EINVAL turns it off
  buffers_ = buffer_ring::create(&ring_, buffer_group, provided_buffers, buffer_size);
  caps_.provided_buffers = buffers_ != nullptr;
  caps_.multishot_accept = true;  // tried first; an acceptor the kernel answers
                                  // EINVAL goes on one SQE per accept

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int err = errno;
    buffers_.reset();
    io_uring_queue_exit(&ring_);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  arm_wakeup();
}

uring_context::~uring_context() {
  buried_.clear();
  buffers_.reset();
  io_uring_queue_exit(&ring_);
  ::close(wake_fd_);
}

io_uring_sqe* uring_context::get_sqe() noexcept {
  for (;;) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    // SQ full: hand what is queued to the kernel and take the freed slot.
    // Nothing is dropped.
    io_uring_submit(&ring_);
  }
}

void uring_context::complete_now(operation& op, int res) noexcept {
  op.res = res;
  op.pending = 0;
  push_ready(op);
}

void uring_context::push_ready(operation& op) noexcept {
  op.next = nullptr;
  if (ready_tail_) {
    ready_tail_->next = &op;
  } else {
    ready_head_ = &op;
  }
  ready_tail_ = &op;
}

void uring_context::run_ready() {
  while (operation* op = ready_head_) {
    ready_head_ = op->next;
    if (!ready_head_) ready_tail_ = nullptr;
    if (op->on_complete && !op->on_complete(*op)) continue;  // re-issued: not finished yet
    op->waiter.resume();
  }
}

void uring_context::dispatch(const io_uring_cqe& cqe) noexcept {
  const std::uint64_t data = cqe.user_data;
  if (data == 0) return;
  void* target = reinterpret_cast<void*>(data & ~std::uint64_t{tag_mask});
  switch (data & tag_mask) {
    case tag_operation: {
      auto* op = static_cast<operation*>(target);
      op->res = cqe.res;
      op->flags = cqe.flags;
      if (op->deadline_list) remove_deadline(*op);
      if (--op->pending == 0) push_ready(*op);
      break;
    }
    case tag_handler:
      static_cast<cqe_handler*>(target)->on_cqe(cqe.res, cqe.flags);
      break;
    default:
      break;
  }
}

void uring_context::reap() noexcept {
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    dispatch(*cqe);
    ++seen;
  }
  io_uring_cq_advance(&ring_, seen);
}

void uring_context::run() {
  loop_thread_ = std::this_thread::get_id();
  now_ = std::chrono::steady_clock::now();
  loop_clock::publish(now_);
  for (;;) {
    run_ready();
    run_posted();
    if (stop_.exchange(false, std::memory_order_acq_rel)) break;
    if (ready_head_) {
      io_uring_submit(&ring_);
    } else {
      wait();
    }
    now_ = std::chrono::steady_clock::now();
    loop_clock::publish(now_);
    reap();
    expire_deadlines();
  }
  loop_thread_ = {};
  loop_clock::withdraw();
  io_uring_submit(&ring_);
}

void uring_context::close_fd(int fd) noexcept {
  if (loop_thread_ != std::this_thread::get_id()) {
    ::close(fd);
    return;
  }
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data64(sqe, 0);
  // Without a completion to post, a close does not end the turn's wait early (an extra enter per
  // connection otherwise: run-counts.sh).
  if (features_ & IORING_FEAT_CQE_SKIP) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

// Submits what the turn queued and waits for a completion, at most until the
// nearest deadline (as of the turn's clock read: a wake-up a little early finds
// nothing expired and waits again).
void uring_context::wait() noexcept {
  bool bounded = false;
  auto nearest = std::chrono::steady_clock::time_point::max();
  for (const deadline_list& l : deadlines_) {
    if (l.head && l.head->deadline < nearest) {
      nearest = l.head->deadline;
      bounded = true;
    }
  }
  int rc;
  if (!bounded) {
    rc = io_uring_submit_and_wait(&ring_, 1);
  } else if (nearest <= now_) {
    rc = io_uring_submit(&ring_);
  } else {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(nearest - now_).count();
    __kernel_timespec ts{};
    ts.tv_sec = left / 1'000'000'000;
    ts.tv_nsec = left % 1'000'000'000;
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME)
    log::error("io_uring_submit_and_wait: ", std::error_code(-rc, std::generic_category()).message());
}

// Callers pass what is left of a deadline (a header timeout counting down), so timeouts vary: rounded
// up to a step that grows with them, they fall into a few hundred lists at most, and a list that
// emptied is reused for another value. Firing up to 250 ms late on a timeout of seconds is harmless.
duration uring_context::deadline_step(duration timeout) noexcept {
  const duration step = timeout > std::chrono::seconds(1)          ? duration(std::chrono::milliseconds(250))
                        : timeout > std::chrono::milliseconds(100) ? duration(std::chrono::milliseconds(25))
                                                                   : duration(std::chrono::milliseconds(1));
  return (timeout + step - duration(1)) / step * step;
}

void uring_context::add_deadline(operation& op, duration timeout) {
  timeout = deadline_step(timeout);
  std::size_t i = 0;
  std::size_t empty = deadlines_.size();
  for (; i < deadlines_.size() && deadlines_[i].timeout != timeout; ++i)
    if (!deadlines_[i].head && empty == deadlines_.size()) empty = i;
  if (i == deadlines_.size()) {
    if (empty < deadlines_.size()) {
      i = empty;
      deadlines_[i].timeout = timeout;
    } else {
      deadlines_.push_back({timeout, nullptr, nullptr});
      ++count().deadline_lists;
    }
  }
  deadline_list& l = deadlines_[i];
  // Outside run() the turn's clock read may be old (a test starting an
  // operation before it runs).
  if (loop_thread_ != std::this_thread::get_id()) now_ = std::chrono::steady_clock::now();
  op.deadline = now_ + timeout;
  op.deadline_list = static_cast<std::uint32_t>(i + 1);
  op.deadline_next = nullptr;
  op.deadline_prev = l.tail;
  if (l.tail) {
    l.tail->deadline_next = &op;
  } else {
    l.head = &op;
  }
  l.tail = &op;
}

void uring_context::remove_deadline(operation& op) noexcept {
  deadline_list& l = deadlines_[op.deadline_list - 1];
  if (op.deadline_prev) {
    op.deadline_prev->deadline_next = op.deadline_next;
  } else {
    l.head = op.deadline_next;
  }
  if (op.deadline_next) {
    op.deadline_next->deadline_prev = op.deadline_prev;
  } else {
    l.tail = op.deadline_prev;
  }
  op.deadline_prev = op.deadline_next = nullptr;
  op.deadline_list = 0;
}

// An expired operation is cancelled; it completes with ECANCELED (or its
// result, if it won the race), and timed_out turns ECANCELED into timed_out for
// its waiter.
void uring_context::expire_deadlines() noexcept {
  for (deadline_list& l : deadlines_) {
    while (l.head && l.head->deadline <= now_) {
      operation* op = l.head;
      remove_deadline(*op);
      op->timed_out = true;
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(op) | tag_operation, 0);
      io_uring_sqe_set_data64(sqe, 0);
    }
  }
}

void uring_context::stop() noexcept {
  stop_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  const ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void uring_context::post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
    has_posted_.store(true, std::memory_order_release);
  }
  const std::uint64_t one = 1;
  const ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void uring_context::run_posted() {
  // A post that this misses wrote the wake-up eventfd after setting the flag: the next turn sees it.
  if (!has_posted_.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(posted_mutex_);
    has_posted_.store(false, std::memory_order_relaxed);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

void uring_context::arm_wakeup() noexcept {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(sqe,
                          reinterpret_cast<std::uint64_t>(static_cast<cqe_handler*>(this)) | tag_handler);
}

void uring_context::on_cqe(int /*res*/, std::uint32_t /*flags*/) {
  // Posted functions and stop requests are looked at after every batch; just
  // listen again.
  arm_wakeup();
}

void uring_context::cancel_all() noexcept {
  closing_ = true;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
  io_uring_sqe_set_data64(sqe, 0);
}

void uring_context::bury(std::unique_ptr<cqe_handler, void (*)(cqe_handler*)> handler) {
  buried_.push_back(std::move(handler));
}

void uring_context::unbury(cqe_handler* handler) noexcept {
  for (auto it = buried_.begin(); it != buried_.end(); ++it) {
    if (it->get() == handler) {
      buried_.erase(it);  // destroys it
      return;
    }
  }
}

void uring_context::release_lease(std::uint32_t id, std::byte* data) noexcept {
  if (id == heap_lease) {
    heap_buffers_.give_back(data);
  } else {
    buffers_->give_back(static_cast<std::uint16_t>(id));
  }
}

std::unique_ptr<socket_impl> uring_context::open_socket(int family, std::error_code& ec) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = {errno, std::generic_category()};
    return nullptr;
  }
  ec.clear();
  detail::disable_nagle(fd);
  return std::make_unique<uring_socket>(this, fd);
}

std::unique_ptr<socket_impl> uring_context::adopt_socket(native_handle_type fd) {
  return std::make_unique<uring_socket>(this, fd);
}

std::unique_ptr<acceptor_impl> uring_context::adopt_acceptor(native_handle_type fd) {
  return std::make_unique<uring_acceptor_handle>(this, fd);
}

std::unique_ptr<timer_impl> uring_context::make_timer() {
  return std::make_unique<uring_timer>(this);
}

}  // namespace cproxy::io::uring
