// timer: waits for a duration on a context. One wait at a time; cancel() ends it early with
// operation_canceled.
#pragma once

#include <memory>

#include "connect/io/awaitable.hpp"
#include "connect/io/backend.hpp"

namespace cproxy::io {

class timer {
 public:
  explicit timer(context& ctx) : impl_(ctx.make_timer()) {}

  auto wait(duration delay) {
    wait_op op;
    op.delay = delay;
    return op_awaitable<timer_impl, wait_op>{impl_.get(), std::move(op)};
  }
  void cancel() noexcept { impl_->cancel(); }

 private:
  std::unique_ptr<timer_impl> impl_;
};

}  // namespace cproxy::io
