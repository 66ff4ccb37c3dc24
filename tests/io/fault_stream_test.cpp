// The fault_stream test fake (tests/support/fault_stream.hpp) on every backend: bytes cross in order,
// shutdown_send gives EOF, nothing completes inline, cancel() and timeouts end waits, a full peer
// holds a write in flight, overlapping operations are recorded, and the fault_counter fails exactly
// the Nth operation (a reset breaks both ends; a timeout does not) and counts what a run used.
#include "support/fault_stream.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "connect/coro/scope.hpp"
#include "support/backends.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;
using test::fault_counter;
using test::fault_kind;
using test::fault_stream;

namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

struct op_result {
  io::io_result r;
  std::string data;
  bool done = false;
};

coro::task<void> read_one(io::stream* s, std::size_t max, io::duration timeout, op_result* out) {
  std::vector<std::byte> buf(max);
  const std::span<std::byte> into(buf);
  out->r = co_await s->read_some(into, timeout);
  out->data.assign(reinterpret_cast<const char*>(buf.data()), out->r.bytes);
  out->done = true;
}

// `data`: a string literal (GCC 12: no temporary std::string in a co_await operand).
coro::task<void> write_one(io::stream* s, const char* data, io::duration timeout, op_result* out) {
  const std::span<const std::byte> bytes = as_bytes(data);
  out->r = co_await s->write_all(bytes, timeout);
  out->done = true;
}

// Reads until EOF or an error.
coro::task<void> read_to_eof(io::stream* s, op_result* out) {
  std::array<std::byte, 64> buf;
  for (int i = 0; i < 10'000; ++i) {
    const std::span<std::byte> into(buf);
    const io::io_result r = co_await s->read_some(into, 5s);
    if (r.ec || r.bytes == 0) {
      out->r = r;
      break;
    }
    out->data.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
  }
  out->done = true;
}

coro::task<void> crosses_in_order(io::context* ctx, std::string* got_b, std::string* got_a,
                                  std::size_t* reads, std::string* gathered, io::received* any, bool* eof) {
  auto [a, b] = fault_stream::make_pair(*ctx);
  b->set_read_limit(3);  // partial reads: "hello world" takes four
  op_result one;
  const std::string_view hello = "hello world";
  const std::span<const std::byte> hello_bytes = as_bytes(hello);
  const io::io_result w = co_await a->write_all(hello_bytes, 1s);
  BOOST_TEST(w.bytes == hello.size());
  a->shutdown_send();
  co_await read_to_eof(b.get(), &one);
  *got_b = one.data;
  *eof = !one.r.ec && one.r.bytes == 0;
  *reads = b->bytes_read();

  const std::string_view head = "HEAD ", body = "body";
  const std::array<io::const_buffer, 2> pieces{io::const_buffer{head.data(), head.size()},
                                               io::const_buffer{body.data(), body.size()}};
  const std::span<const io::const_buffer> all(pieces);
  const io::io_result g = co_await b->write_all(all, 1s);
  BOOST_TEST(g.bytes == 9u);
  *any = co_await a->read_any(1s);
  gathered->assign(reinterpret_cast<const char*>(any->data.bytes().data()), any->data.size());
  b->shutdown_send();
  op_result rest;
  co_await read_to_eof(a.get(), &rest);
  *got_a = rest.data;
}

coro::task<void> never_inline(io::context* ctx, bool* read_inline, bool* write_inline, bool* fail_inline,
                              op_result* fail) {
  fault_counter counter(3);
  auto [a, b] = fault_stream::make_pair(*ctx, &counter);
  op_result w, r, f;
  coro::scope sc;
  sc.spawn(write_one(a.get(), "x", 1s, &w));  // operation 1: room for it at once
  *write_inline = w.done;
  co_await sc.join();
  sc.spawn(read_one(b.get(), 8, 1s, &r));  // operation 2: the byte is there already
  *read_inline = r.done;
  co_await sc.join();
  sc.spawn(read_one(b.get(), 8, 1s, &f));  // operation 3: fails
  *fail_inline = f.done;
  co_await sc.join();
  *fail = f;
}

coro::task<void> cancel_and_timeouts(io::context* ctx, op_result* cancelled_read, op_result* cancelled_write,
                                     op_result* timed_read, op_result* timed_write, op_result* after) {
  auto [a, b] = fault_stream::make_pair(*ctx);
  a->set_capacity(4);
  coro::scope sc;
  sc.spawn(read_one(a.get(), 8, 0ms, cancelled_read));               // no timeout: waits until cancelled
  sc.spawn(write_one(a.get(), "0123456789", 0ms, cancelled_write));  // 4 bytes fit, then it waits
  for (int i = 0; i < 100 && a->bytes_written() < 4; ++i) {
    io::timer t(*ctx);
    co_await t.wait(1ms);
  }
  BOOST_TEST(a->reading());
  BOOST_TEST(a->writing());
  a->cancel();
  co_await sc.join();

  co_await read_one(b.get(), 8, 20ms, after);                  // the 4 bytes the cancelled write had put in
  co_await read_one(a.get(), 8, 20ms, timed_read);             // nobody writes to a
  co_await write_one(a.get(), "abcdefgh", 20ms, timed_write);  // nobody reads b: 4 fit, then time out
}

coro::task<void> capacity_holds_write(io::context* ctx, bool* held, op_result* w, std::string* read) {
  auto [a, b] = fault_stream::make_pair(*ctx);
  a->set_capacity(4);
  coro::scope sc;
  sc.spawn(write_one(a.get(), "0123456789", 1s, w));
  io::timer t(*ctx);
  for (int i = 0; i < 100 && a->bytes_written() < 4; ++i) co_await t.wait(1ms);
  *held = a->writing() && !w->done;
  a->shutdown_send();  // not yet: it ends the write in flight with broken_pipe...
  co_await sc.join();
  op_result r;
  co_await read_to_eof(b.get(), &r);  // ...and the peer reads the 4 bytes that made it, then EOF
  *read = r.data;
}

coro::task<void> capacity_drains(io::context* ctx, op_result* w, std::string* read) {
  auto [a, b] = fault_stream::make_pair(*ctx);
  a->set_capacity(4);
  coro::scope sc;
  static const std::string zs(1000, 'z');
  sc.spawn(write_one(a.get(), zs.c_str(), 1s, w));
  op_result r;
  for (int i = 0; i < 1000 && read->size() < 1000; ++i) {
    co_await read_one(b.get(), 64, 1s, &r);
    if (r.r.ec || r.r.bytes == 0) break;
    *read += r.data;
  }
  co_await sc.join();
}

coro::task<void> overlapping(io::context* ctx, std::size_t* writes, std::size_t* reads, std::size_t* clean) {
  auto [a, b] = fault_stream::make_pair(*ctx);
  a->set_capacity(1);
  op_result w1, w2, r1, r2;
  coro::scope sc;
  // Nobody reads b or writes to a: each waits, then times out.
  sc.spawn(write_one(a.get(), "abc", 50ms, &w1));
  sc.spawn(write_one(a.get(), "def", 50ms, &w2));  // a second write in flight on one end
  sc.spawn(read_one(a.get(), 4, 50ms, &r1));
  sc.spawn(read_one(a.get(), 4, 50ms, &r2));  // a second read in flight on one end
  co_await sc.join();
  *writes = a->overlapping_writes();
  *reads = a->overlapping_reads();
  *clean = b->overlapping_reads() + b->overlapping_writes();
}

struct fault_run {
  op_result first, failed, later_same, later_peer;
  std::size_t faults_a = 0, faults_b = 0;
};

// connect (reported by a fake connector), write, read, then the 4th operation fails: a read on b.
coro::task<void> fails_nth(io::context* ctx, fault_counter* counter, fault_run* out) {
  auto [a, b] = fault_stream::make_pair(*ctx, counter);
  BOOST_TEST(counter->step(fault_kind::connect));        // 1
  co_await write_one(a.get(), "ping", 1s, &out->first);  // 2
  op_result r;
  b->set_read_limit(2);
  co_await read_one(b.get(), 8, 1s, &r);                         // 3: "pi"
  co_await read_one(b.get(), 8, 1s, &out->failed);               // 4: fails
  co_await read_one(b.get(), 8, 100ms, &out->later_same);        // 5
  co_await write_one(a.get(), "more", 100ms, &out->later_peer);  // 6
  out->faults_a = a->faults();
  out->faults_b = b->faults();
}

coro::task<void> one_exchange(io::context* ctx, fault_counter* counter, bool* ended) {
  auto [a, b] = fault_stream::make_pair(*ctx, counter);
  op_result w, r;
  if (counter->step(fault_kind::connect)) {
    co_await write_one(a.get(), "ping", 1s, &w);
    if (!w.r.ec) {
      a->shutdown_send();
      co_await read_to_eof(b.get(), &r);
    }
  }
  *ended = true;
}

coro::task<void> destroyed_end(io::context* ctx, op_result* read, op_result* write) {
  auto [a, b] = fault_stream::make_pair(*ctx);
  coro::scope sc;
  sc.spawn(read_one(a.get(), 8, 1s, read));  // waiting when b goes
  b.reset();
  co_await sc.join();
  co_await write_one(a.get(), "x", 1s, write);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fault_stream_fake)

CPROXY_IO_TEST_CASE(bytes_cross_in_order_and_shutdown_gives_eof) {
  auto ctx = io::make_context(Backend::kind);
  std::string got_b, got_a, gathered;
  std::size_t reads = 0;
  io::received any;
  bool eof = false;
  test::run(*ctx, crosses_in_order(ctx.get(), &got_b, &got_a, &reads, &gathered, &any, &eof), 10s);
  BOOST_TEST(got_b == "hello world");
  BOOST_TEST(reads == 11u);
  BOOST_TEST(eof);
  BOOST_TEST(!any.ec);
  BOOST_TEST(gathered == "HEAD body");
  BOOST_TEST(got_a == "");
}

CPROXY_IO_TEST_CASE(operations_complete_from_the_loop_never_inline) {
  auto ctx = io::make_context(Backend::kind);
  bool read_inline = true, write_inline = true, fail_inline = true;
  op_result fail;
  test::run(*ctx, never_inline(ctx.get(), &read_inline, &write_inline, &fail_inline, &fail), 10s);
  BOOST_TEST(!write_inline);
  BOOST_TEST(!read_inline);
  BOOST_TEST(!fail_inline);
  BOOST_TEST(fail.done);
  BOOST_TEST((fail.r.ec == std::errc::connection_reset));
}

CPROXY_IO_TEST_CASE(cancel_and_timeouts_end_waits) {
  auto ctx = io::make_context(Backend::kind);
  op_result cancelled_read, cancelled_write, timed_read, timed_write, after;
  test::run(
      *ctx,
      cancel_and_timeouts(ctx.get(), &cancelled_read, &cancelled_write, &timed_read, &timed_write, &after),
      10s);
  BOOST_TEST(io::is_cancelled(cancelled_read.r.ec));
  BOOST_TEST(io::is_cancelled(cancelled_write.r.ec));
  BOOST_TEST(cancelled_write.r.bytes == 4u);
  BOOST_TEST(after.data == "0123");
  BOOST_TEST(io::is_timeout(timed_read.r.ec));
  BOOST_TEST(io::is_timeout(timed_write.r.ec));
  BOOST_TEST(timed_write.r.bytes == 4u);
}

CPROXY_IO_TEST_CASE(a_full_peer_holds_a_write_in_flight_until_it_reads) {
  auto ctx = io::make_context(Backend::kind);
  bool held = false;
  op_result w;
  std::string read;
  test::run(*ctx, capacity_holds_write(ctx.get(), &held, &w, &read), 10s);
  BOOST_TEST(held);
  BOOST_TEST((w.r.ec == std::errc::broken_pipe));
  BOOST_TEST(read == "0123");

  op_result drained;
  std::string all;
  test::run(*ctx, capacity_drains(ctx.get(), &drained, &all), 10s);
  BOOST_TEST(!drained.r.ec);
  BOOST_TEST(drained.r.bytes == 1000u);
  BOOST_TEST(all == std::string(1000, 'z'));
}

CPROXY_IO_TEST_CASE(overlapping_operations_on_one_end_are_recorded) {
  auto ctx = io::make_context(Backend::kind);
  std::size_t writes = 0, reads = 0, clean = 1;
  test::run(*ctx, overlapping(ctx.get(), &writes, &reads, &clean), 10s);
  BOOST_TEST(writes == 1u);
  BOOST_TEST(reads == 1u);
  BOOST_TEST(clean == 0u);
}

CPROXY_IO_TEST_CASE(the_nth_operation_fails_and_a_reset_breaks_both_ends) {
  auto ctx = io::make_context(Backend::kind);
  fault_counter counter(4);
  fault_run run;
  test::run(*ctx, fails_nth(ctx.get(), &counter, &run), 10s);
  BOOST_TEST(!run.first.r.ec);
  BOOST_TEST((run.failed.r.ec == std::errc::connection_reset));
  BOOST_TEST(run.failed.r.bytes == 0u);
  BOOST_TEST((run.later_same.r.ec == std::errc::connection_reset));
  BOOST_TEST((run.later_peer.r.ec == std::errc::connection_reset));
  BOOST_TEST(counter.fired());
  BOOST_TEST((counter.fired_kind() == fault_kind::read));
  BOOST_TEST(counter.count() == 6u);
  BOOST_TEST(counter.count(fault_kind::connect) == 1u);
  BOOST_TEST(counter.count(fault_kind::write) == 2u);
  BOOST_TEST(run.faults_a == 0u);
  BOOST_TEST(run.faults_b == 1u);
}

CPROXY_IO_TEST_CASE(a_timeout_fault_fails_one_operation_only) {
  auto ctx = io::make_context(Backend::kind);
  fault_counter counter(4, fault_counter::timeout());
  fault_run run;
  test::run(*ctx, fails_nth(ctx.get(), &counter, &run), 10s);
  BOOST_TEST(io::is_timeout(run.failed.r.ec));
  BOOST_TEST(!run.later_same.r.ec);
  BOOST_TEST(run.later_same.data == "ng");  // nothing was consumed by the failed read
  BOOST_TEST(!run.later_peer.r.ec);
}

CPROXY_IO_TEST_CASE(a_sweep_fails_each_operation_once) {
  auto ctx = io::make_context(Backend::kind);
  std::size_t runs = 0, fired = 0, ended = 0;
  const std::size_t total = test::sweep([&](fault_counter& counter) {
    bool done = false;
    test::run(*ctx, one_exchange(ctx.get(), &counter, &done), 10s);
    ++runs;
    fired += counter.fired() ? 1 : 0;
    ended += done ? 1 : 0;
  });
  // connect, write, then reads until EOF: "ping" in one read, then EOF.
  BOOST_TEST(total == 4u);
  BOOST_TEST(runs == total + 1);
  BOOST_TEST(fired == total);
  BOOST_TEST(ended == runs);
}

CPROXY_IO_TEST_CASE(a_destroyed_end_gives_its_peer_eof_and_broken_pipe) {
  auto ctx = io::make_context(Backend::kind);
  op_result read, write;
  test::run(*ctx, destroyed_end(ctx.get(), &read, &write), 10s);
  BOOST_TEST(read.done);
  BOOST_TEST(!read.r.ec);
  BOOST_TEST(read.r.bytes == 0u);
  BOOST_TEST((write.r.ec == std::errc::broken_pipe));
}

BOOST_AUTO_TEST_SUITE_END()
