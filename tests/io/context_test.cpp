// context on every backend: post() from another thread runs on the context's thread and wakes it;
// stop() from another thread ends run(), even when it comes before run() starts; block_on can run one
// context several times and returns the task's value.
#include <atomic>
#include <chrono>
#include <thread>

#include "connect/io/block_on.hpp"
#include "connect/io/timer.hpp"
#include "support/backends.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

coro::task<void> wait_on(io::timer* t, io::duration d, std::error_code* ec) {
  *ec = co_await t->wait(d);
}

coro::task<int> value_after(io::context* ctx, int v) {
  io::timer t(*ctx);
  const std::error_code ec = co_await t.wait(1ms);
  co_return ec ? -1 : v;
}

// Runs ctx.run() on this thread; if nothing stops it within `budget`, a helper thread does, and
// `rescued` says so. Keeps a lost stop() from hanging the suite.
void run_with_rescue(io::context& ctx, std::chrono::milliseconds budget, bool& rescued) {
  std::atomic<bool> returned{false};
  std::atomic<bool> rescue{false};
  std::thread guard([&] {
    const test::deadline d(budget);
    while (!returned.load() && !d.expired()) std::this_thread::sleep_for(1ms);
    if (!returned.load()) {
      rescue.store(true);
      ctx.stop();
    }
  });
  ctx.run();
  returned.store(true);
  guard.join();
  rescued = rescue.load();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(context)

CPROXY_IO_TEST_CASE(post_from_another_thread_runs_on_the_context_thread) {
  auto ctx = io::make_context(Backend::kind);
  io::timer t(*ctx);
  std::error_code ec;
  std::thread::id ran_on;
  std::thread poster([&] {
    ctx->post([&] {
      ran_on = std::this_thread::get_id();
      t.cancel();  // on the context's thread, as every call but post() and stop() must be
    });
  });
  test::run(*ctx, wait_on(&t, 30s, &ec));
  poster.join();
  BOOST_TEST(io::is_cancelled(ec), "the wait ended with " << ec.message());
  BOOST_TEST((ran_on == std::this_thread::get_id()));
}

CPROXY_IO_TEST_CASE(stop_from_another_thread_ends_run) {
  auto ctx = io::make_context(Backend::kind);
  std::atomic<bool> running{false};
  ctx->post([&] { running.store(true); });
  std::thread stopper([&] {
    test::poll_until([&] { return running.load(); }, 10s);  // run() has started
    ctx->stop();
  });
  bool rescued = false;
  run_with_rescue(*ctx, 10s, rescued);
  stopper.join();
  BOOST_TEST(running.load());
  BOOST_TEST(!rescued, "run() did not return after stop() from another thread");
}

CPROXY_IO_TEST_CASE(stop_before_run_is_not_lost) {
  // worker_pool::stop may run before a worker thread has entered run(): that stop must still count.
  auto ctx = io::make_context(Backend::kind);
  std::thread stopper([&] { ctx->stop(); });
  stopper.join();
  bool rescued = false;
  run_with_rescue(*ctx, 2s, rescued);
  BOOST_TEST(!rescued, "run() ignored a stop() that came before it");
}

CPROXY_IO_TEST_CASE(block_on_twice_on_one_context) {
  auto ctx = io::make_context(Backend::kind);
  const int a = io::block_on(*ctx, value_after(ctx.get(), 1));
  const int b = io::block_on(*ctx, value_after(ctx.get(), 2));
  BOOST_TEST(a == 1);
  BOOST_TEST(b == 2);
}

BOOST_AUTO_TEST_SUITE_END()
