// run(): block_on with a watchdog, for test bodies. If the body is not done within `limit`, the watchdog
// calls context::cancel_all() so that every wait ends and the test fails instead of hanging.
#pragma once

#include <chrono>
#include <exception>
#include <thread>
#include <utility>

#include "connect/coro/scope.hpp"
#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/block_on.hpp"
#include "connect/io/timer.hpp"
#include "support/unit_test.hpp"

namespace cproxy::test {

namespace detail {

inline coro::task<void> watchdog(io::timer* t, io::context* ctx, io::duration limit, bool* fired) {
  const std::error_code ec = co_await t->wait(limit);
  if (!ec) {
    *fired = true;
    ctx->cancel_all();
  }
}

inline coro::task<void> guarded(io::context* ctx, coro::task<void> body, io::duration limit, bool* fired,
                                std::exception_ptr* err) {
  io::timer t(*ctx);
  coro::scope watch;
  watch.spawn(watchdog(&t, ctx, limit, fired));
  try {
    co_await std::move(body);
  } catch (...) {
    *err = std::current_exception();
  }
  t.cancel();
  co_await watch.join();
}

}  // namespace detail

// Runs `body` to completion on `ctx` (created on this thread). Assertions inside `body` are fine: it
// runs on the test's thread. Avoid BOOST_REQUIRE inside a body that has spawned tasks still running.
inline void run(io::context& ctx, coro::task<void> body, io::duration limit = std::chrono::seconds(60)) {
  bool fired = false;
  std::exception_ptr err;
  io::block_on(ctx, detail::guarded(&ctx, std::move(body), limit, &fired, &err));
  BOOST_CHECK_MESSAGE(
      !fired, "watchdog: the test body ran longer than " << limit.count() << " ms; cancel_all() ended it");
  if (err) std::rethrow_exception(err);
}

// A bound on a polling loop that runs outside a context (threads, worker pools).
class deadline {
 public:
  explicit deadline(std::chrono::milliseconds budget) : end_(std::chrono::steady_clock::now() + budget) {}
  bool expired() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

// Polls `done` until it holds or `budget` runs out; returns its last value. For threads outside any
// context (a worker pool's counters): the short sleep is a polling interval, not a synchronisation.
template <class Predicate>
bool poll_until(Predicate done, std::chrono::milliseconds budget) {
  const deadline d(budget);
  while (!done()) {
    if (d.expired()) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace cproxy::test
