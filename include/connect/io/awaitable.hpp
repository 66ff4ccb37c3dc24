// op_awaitable: the one awaiter shape for every io operation. It carries the operation state, so the
// state lives in the awaiting frame for as long as the coroutine is suspended.
#pragma once

#include <coroutine>
#include <utility>

namespace cproxy::io {

template <class Impl, class Op>
struct op_awaitable {
  Impl* impl;
  Op op;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    op.waiter = h;
    impl->start(op);
  }
  decltype(auto) await_resume() { return op.take(); }
};

}  // namespace cproxy::io
