// Timers and timeouts on every backend: a wait elapses (no earlier than asked), cancel() ends a wait
// with operation_canceled and the timer stays usable; reads on a silent peer and sends on a full
// socket end with timed_out.
#include "connect/io/timer.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include "connect/coro/scope.hpp"
#include "connect/io/loop_clock.hpp"
#include "support/backends.hpp"
#include "support/loopback.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;
using clock_type = std::chrono::steady_clock;

namespace {

struct timed {
  std::error_code ec;
  clock_type::duration took{};
  bool done = false;
};

coro::task<void> wait_for(io::timer* t, io::duration d, timed* out) {
  const auto start = clock_type::now();
  out->ec = co_await t->wait(d);
  out->took = clock_type::now() - start;
  out->done = true;
}

coro::task<void> wait_elapses(io::context* ctx, timed* first, timed* second, timed* zero) {
  io::timer t(*ctx);
  t.cancel();  // with no wait in flight: nothing to do, and nothing that sticks
  co_await wait_for(&t, 50ms, first);
  co_await wait_for(&t, 1ms, second);  // the same timer again
  co_await wait_for(&t, 0ms, zero);    // elapses at once (after a trip through the loop)
}

struct cancel_result {
  timed cancelled, again;
  bool done_before_cancel = false;
};

coro::task<void> cancel_ends_wait(io::context* ctx, cancel_result* out) {
  io::timer t(*ctx);
  coro::scope sc;
  sc.spawn(wait_for(&t, 30s, &out->cancelled));  // runs until it suspends in wait()
  out->done_before_cancel = out->cancelled.done;
  t.cancel();
  co_await sc.join();
  co_await wait_for(&t, 20ms, &out->again);  // a cancel does not stick to the next wait
}

struct recv_timeout_result {
  std::error_code setup;
  timed recv, recv_any;
  std::error_code after_ec;
  std::size_t after_bytes = 0;
};

coro::task<void> reads_time_out(io::context* ctx, recv_timeout_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  std::array<std::byte, 64> buf;
  auto start = clock_type::now();
  const io::io_result r = co_await p.client.recv(buf, 100ms);
  out->recv.took = clock_type::now() - start;
  out->recv.ec = r.ec;

  start = clock_type::now();
  io::received any = co_await p.client.recv_any(100ms);
  out->recv_any.took = clock_type::now() - start;
  out->recv_any.ec = any.ec;

  // A read that timed out took nothing from the stream: the connection still works.
  const std::array<std::byte, 5> hello{std::byte{'h'}, std::byte{'e'}, std::byte{'l'}, std::byte{'l'},
                                       std::byte{'o'}};
  const io::io_result w = co_await p.server.send_all(hello, 5s);
  if (w.ec) {
    out->after_ec = w.ec;
    co_return;
  }
  const io::io_result after = co_await test::recv_exact(&p.client, std::span<std::byte>(buf.data(), 5), 5s);
  out->after_ec = after.ec;
  out->after_bytes = after.bytes;
}

struct send_timeout_result {
  std::error_code setup;
  timed last_send;
  std::size_t sent = 0;
};

// The peer never reads: sends fill both socket buffers, then one waits until its timeout.
coro::task<void> send_times_out(io::context* ctx, send_timeout_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  test::shrink_buffers(p.client.native_handle(), 16 * 1024);
  test::shrink_buffers(p.server.native_handle(), 16 * 1024);
  std::vector<std::byte> chunk(64u << 10, std::byte{7});
  for (int i = 0; i < 100000; ++i) {  // bound: 6.4 GB, far beyond any socket buffer
    const auto start = clock_type::now();
    const io::io_result r = co_await p.client.send(chunk, 200ms);
    out->last_send.took = clock_type::now() - start;
    if (r.ec) {
      out->last_send.ec = r.ec;
      break;
    }
    out->sent += r.bytes;
  }
}

// Deadlines the proxy computes on loop_clock must agree with the io core's timers.
struct loop_clock_readings {
  bool went_back = false;      // a reading earlier than the one before
  bool early = false;          // a wait ended before its time had passed on the loop's clock
  bool ahead_of_real = false;  // a reading later than the steady clock
};

coro::task<void> read_loop_clock(io::context* ctx, loop_clock_readings* out) {
  io::timer t(*ctx);
  io::loop_clock::time_point previous = io::loop_clock::now();
  for (int i = 0; i < 20; ++i) {
    const io::loop_clock::time_point before = io::loop_clock::now();
    co_await t.wait(2ms);
    const io::loop_clock::time_point after = io::loop_clock::now();
    out->went_back = out->went_back || before < previous || after < before;
    out->early = out->early || after - before < 2ms;
    out->ahead_of_real = out->ahead_of_real || after > clock_type::now();
    previous = after;
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(timer)

CPROXY_IO_TEST_CASE(the_loop_clock_agrees_with_timers_and_is_the_steady_clock_outside_a_loop) {
  auto ctx = io::make_context(Backend::kind);
  loop_clock_readings in_loop;
  test::run(*ctx, read_loop_clock(ctx.get(), &in_loop));
  BOOST_TEST(!in_loop.went_back);
  BOOST_TEST(!in_loop.early);
  BOOST_TEST(!in_loop.ahead_of_real);
  // After the loop has run: no turn's time is left behind.
  const clock_type::time_point before = clock_type::now();
  std::this_thread::sleep_for(2ms);
  const io::loop_clock::time_point outside = io::loop_clock::now();
  BOOST_TEST((outside >= before + 2ms));
  BOOST_TEST((outside <= clock_type::now()));
}

CPROXY_IO_TEST_CASE(wait_elapses_no_earlier_than_asked) {
  auto ctx = io::make_context(Backend::kind);
  timed first, second, zero;
  test::run(*ctx, wait_elapses(ctx.get(), &first, &second, &zero));
  BOOST_TEST(first.done);
  BOOST_TEST(!first.ec, first.ec.message());
  BOOST_TEST(
      (first.took >= 50ms),
      "woke after " << std::chrono::duration_cast<std::chrono::microseconds>(first.took).count() << " us");
  BOOST_TEST(second.done);
  BOOST_TEST(!second.ec, second.ec.message());
  BOOST_TEST((second.took >= 1ms));
  BOOST_TEST(zero.done);
  BOOST_TEST(!zero.ec, "wait(0ms): " << zero.ec.message());
}

CPROXY_IO_TEST_CASE(cancel_ends_a_wait_with_operation_canceled) {
  auto ctx = io::make_context(Backend::kind);
  cancel_result res;
  test::run(*ctx, cancel_ends_wait(ctx.get(), &res));
  BOOST_TEST(!res.done_before_cancel, "a 30 s wait must not complete inside spawn()");
  BOOST_TEST(res.cancelled.done);
  BOOST_TEST(io::is_cancelled(res.cancelled.ec), "got " << res.cancelled.ec.message());
  BOOST_TEST(res.again.done);
  BOOST_TEST(!res.again.ec, "a wait after a cancel: " << res.again.ec.message());
  BOOST_TEST((res.again.took >= 20ms));
}

CPROXY_IO_TEST_CASE(recv_on_silent_peer_times_out) {
  auto ctx = io::make_context(Backend::kind);
  recv_timeout_result res;
  test::run(*ctx, reads_time_out(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(io::is_timeout(res.recv.ec), "recv: got " << res.recv.ec.message());
  BOOST_TEST((res.recv.took >= 100ms));
  BOOST_TEST(io::is_timeout(res.recv_any.ec), "recv_any: got " << res.recv_any.ec.message());
  BOOST_TEST((res.recv_any.took >= 100ms));
  BOOST_TEST(!res.after_ec, "after the timeouts: " << res.after_ec.message());
  BOOST_TEST(res.after_bytes == 5u);
}

// What is left of a deadline varies from call to call (a header timeout counting down). The uring loop
// keeps one list per rounded timeout and reuses emptied ones: 300 reads with 300 different timeouts
// make a handful of lists, not 300 that every later operation and loop turn would scan.
coro::task<void> reads_with_varying_timeouts(io::context* ctx, std::error_code* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    *out = p.ec;
    co_return;
  }
  const std::array<std::byte, 1> one{std::byte{'x'}};
  std::array<std::byte, 1> buf;
  for (int i = 0; i < 300; ++i) {
    const io::io_result w = co_await p.server.send_all(one, 5s);
    const io::duration timeout(2000 + 7 * i);
    const io::io_result r = co_await p.client.recv(buf, timeout);
    if (w.ec || r.ec) {
      *out = w.ec ? w.ec : r.ec;
      co_return;
    }
  }
}

CPROXY_IO_TEST_CASE(varying_timeouts_share_a_few_deadline_lists) {
  auto ctx = io::make_context(Backend::kind);
  std::error_code ec;
  test::run(*ctx, reads_with_varying_timeouts(ctx.get(), &ec));
  BOOST_TEST(!ec, ec.message());
  BOOST_TEST(ctx->counters().deadline_lists <= 4u, "deadline lists made: " << ctx->counters().deadline_lists);
}

CPROXY_IO_TEST_CASE(send_on_full_socket_times_out) {
  auto ctx = io::make_context(Backend::kind);
  send_timeout_result res;
  test::run(*ctx, send_times_out(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(io::is_timeout(res.last_send.ec),
             "after " << res.sent << " bytes: " << res.last_send.ec.message());
  BOOST_TEST((res.last_send.took >= 200ms));
}

BOOST_AUTO_TEST_SUITE_END()
