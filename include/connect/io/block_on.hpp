// block_on: runs a task to completion on a context, on the calling thread (the context's thread).
// For main() and tests; a server runs its contexts through worker instead.
#pragma once

#include <optional>
#include <utility>

#include "connect/coro/scope.hpp"
#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"

namespace cproxy::io {

namespace detail {
template <class T>
coro::task<void> run_and_stop(context* ctx, coro::task<T> t, std::optional<T>* out, std::exception_ptr* err) {
  try {
    out->emplace(co_await std::move(t));
  } catch (...) {
    *err = std::current_exception();
  }
  ctx->stop();
}
inline coro::task<void> run_and_stop_void(context* ctx, coro::task<void> t, std::exception_ptr* err) {
  try {
    co_await std::move(t);
  } catch (...) {
    *err = std::current_exception();
  }
  ctx->stop();
}
}  // namespace detail

template <class T>
T block_on(context& ctx, coro::task<T> t) {
  coro::scope s;
  std::exception_ptr err;
  if constexpr (std::is_void_v<T>) {
    s.spawn(detail::run_and_stop_void(&ctx, std::move(t), &err));
    ctx.run();
    if (err) std::rethrow_exception(err);
  } else {
    std::optional<T> out;
    s.spawn(detail::run_and_stop(&ctx, std::move(t), &out, &err));
    ctx.run();
    if (err) std::rethrow_exception(err);
    return std::move(*out);
  }
}

}  // namespace cproxy::io
