// wake: one coroutine waits until another on the same worker notifies it, or a timeout passes. Built
// on an io::timer so that the waiter is always resumed from the context's loop, never inline in the
// notifier (which may be an nghttp2 callback in the middle of parsing frames). The timer is made at the
// first wait: most streams never wait, and two timers per stream were 3% of the h2 path's mallocs.
#pragma once

#include <optional>

#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/result.hpp"
#include "connect/io/timer.hpp"

namespace cproxy::proxy::h2 {

class wake {
 public:
  enum class outcome { notified, timed_out, cancelled };

  explicit wake(io::context& ctx) : ctx_(&ctx) {}
  wake(const wake&) = delete;
  wake& operator=(const wake&) = delete;

  // A notification that came while nobody waited is kept for the next wait. `cancelled`: the context
  // cancelled the timer (shutdown), not a notification.
  coro::task<outcome> wait(io::duration timeout) {
    if (notified_) {
      notified_ = false;
      co_return outcome::notified;
    }
    if (!timer_) timer_.emplace(*ctx_);
    waiting_ = true;
    const std::error_code ec = co_await timer_->wait(timeout);
    waiting_ = false;
    if (notified_) {
      notified_ = false;
      co_return outcome::notified;
    }
    co_return ec ? outcome::cancelled : outcome::timed_out;
  }

  void notify() noexcept {
    if (notified_) return;
    notified_ = true;
    if (waiting_) timer_->cancel();
  }

  bool waiting() const noexcept { return waiting_; }

 private:
  io::context* ctx_;
  std::optional<io::timer> timer_;
  bool waiting_ = false;
  bool notified_ = false;
};

}  // namespace cproxy::proxy::h2
