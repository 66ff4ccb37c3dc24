// uring_timer: IORING_OP_TIMEOUT; cancel() removes it (the wait then completes with ECANCELED).
#include "uring_objects.hpp"

namespace cproxy::io::uring {

bool uring_timer::on_complete(operation& op) {
  auto* self = *reinterpret_cast<uring_timer**>(op.scratch + sizeof(__kernel_timespec));
  if (self->current_ == &op) self->current_ = nullptr;
  return true;
}

void uring_timer::start(wait_op& op) {
  auto* ts = new (op.scratch) __kernel_timespec{};
  ts->tv_sec = op.delay.count() / 1000;
  ts->tv_nsec = (op.delay.count() % 1000) * 1'000'000;
  *reinterpret_cast<uring_timer**>(op.scratch + sizeof(__kernel_timespec)) = this;
  op.on_complete = &on_complete;
  current_ = &op;
  ctx_->start(op, duration{}, [&](io_uring_sqe* sqe) { io_uring_prep_timeout(sqe, ts, 0, 0); });
}

void uring_timer::cancel() noexcept {
  if (!current_) return;
  io_uring_sqe* sqe = ctx_->get_sqe();
  io_uring_prep_timeout_remove(sqe, reinterpret_cast<std::uint64_t>(current_), 0);
  io_uring_sqe_set_data64(sqe, 0);
}

}  // namespace cproxy::io::uring
