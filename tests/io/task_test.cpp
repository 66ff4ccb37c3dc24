// task<T> on every backend's block_on: a million awaits of tasks that complete synchronously, in a loop
// and as a deep chain, must not grow the stack (symmetric transfer); exceptions reach the awaiter.
// GCC 12 makes the transfer a tail call only with -foptimize-sibling-calls (on at -O2) and without ASan's
// stack instrumentation (--param asan-stack=0): these cases catch a build type that lacks either.
#include "connect/coro/task.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "support/backends.hpp"
#include "support/run.hpp"

namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

constexpr std::uint64_t loop_awaits = 1'000'000;
constexpr std::uint64_t chain_depth = 100'000;

coro::task<std::uint64_t> ready(std::uint64_t v) {
  co_return v;
}

coro::task<void> ready_void() {
  co_return;
}

coro::task<void> await_in_a_loop(std::uint64_t n, std::uint64_t* sum) {
  for (std::uint64_t i = 0; i < n; ++i) {
    auto t = ready(1);
    *sum += co_await std::move(t);
    auto v = ready_void();
    co_await std::move(v);
  }
}

// Each level awaits the next: `depth` frames alive at once, resumed back up by symmetric transfer.
coro::task<std::uint64_t> chain(std::uint64_t depth) {
  if (depth == 0) co_return 0;
  auto next = chain(depth - 1);
  const std::uint64_t below = co_await std::move(next);
  co_return below + 1;
}

coro::task<void> run_chain(std::uint64_t depth, std::uint64_t* out) {
  auto t = chain(depth);
  *out = co_await std::move(t);
}

coro::task<int> throws() {
  throw std::runtime_error("from inside a task");
  co_return 0;
}

coro::task<void> catch_it(std::string* what) {
  try {
    auto t = throws();
    co_await std::move(t);
  } catch (const std::runtime_error& e) {
    *what = e.what();
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(task)

CPROXY_IO_TEST_CASE(million_synchronous_awaits_do_not_grow_the_stack) {
  auto ctx = io::make_context(Backend::kind);
  std::uint64_t sum = 0;
  test::run(*ctx, await_in_a_loop(loop_awaits, &sum));
  BOOST_TEST(sum == loop_awaits);
}

CPROXY_IO_TEST_CASE(deep_chain_of_synchronous_tasks) {
  auto ctx = io::make_context(Backend::kind);
  std::uint64_t depth = 0;
  test::run(*ctx, run_chain(chain_depth, &depth));
  BOOST_TEST(depth == chain_depth);
}

CPROXY_IO_TEST_CASE(exception_reaches_the_awaiter) {
  auto ctx = io::make_context(Backend::kind);
  std::string what;
  test::run(*ctx, catch_it(&what));
  BOOST_TEST(what == "from inside a task");
}

BOOST_AUTO_TEST_SUITE_END()
