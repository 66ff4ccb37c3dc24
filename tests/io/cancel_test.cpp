// Cancellation on every backend: socket::cancel() ends a recv blocked on a silent peer and a send
// blocked on a full socket with operation_canceled, and a cancel racing with data loses no bytes;
// context::cancel_all() ends everything in flight and fails what starts later. ASan checks the leaks.
#include <array>
#include <chrono>
#include <cstddef>
#include <vector>

#include "connect/coro/scope.hpp"
#include "connect/io/timer.hpp"
#include "support/backends.hpp"
#include "support/loopback.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

struct flow {
  std::error_code ec;
  std::size_t bytes = 0;
  std::size_t completed = 0;  // operations that came back
  bool in_flight = false;
  bool finished = false;
  bool stop = false;  // set before cancel(): a send that completed anyway must not start another
};

// Blocks in recv (no timeout) until data, EOF, or cancellation.
coro::task<void> read_once(io::socket* s, flow* f) {
  std::array<std::byte, 4096> buf;
  f->in_flight = true;
  const io::io_result r = co_await s->recv(buf);
  f->in_flight = false;
  ++f->completed;
  f->ec = r.ec;
  f->bytes = r.bytes;
  f->finished = true;
}

// Sends (no timeout) until a send fails; the peer never reads, so one send ends up blocked for good.
coro::task<void> write_until_blocked(io::socket* s, flow* f) {
  std::vector<std::byte> chunk(256u << 10, std::byte{0x5a});
  for (std::size_t i = 0; i < 100000; ++i) {  // bound: 25 GB, far beyond any socket buffer
    f->in_flight = true;
    const io::io_result r = co_await s->send(chunk);
    f->in_flight = false;
    ++f->completed;
    if (r.ec) {
      f->ec = r.ec;
      break;
    }
    f->bytes += r.bytes;
    if (f->stop) break;
  }
  f->finished = true;
}

// Polls until the writer has sat in one send for 100 ms (its peer's and its own buffers are full).
coro::task<bool> until_blocked(io::context* ctx, const flow* f) {
  io::timer t(*ctx);
  std::size_t last = f->completed;
  int still = 0;
  for (int polls = 0; polls < 2000; ++polls) {  // bound: 10 s
    const std::error_code ec = co_await t.wait(5ms);
    if (ec || f->finished) co_return false;
    if (f->in_flight && f->completed == last) {
      if (++still >= 20) co_return true;
    } else {
      still = 0;
      last = f->completed;
    }
  }
  co_return false;
}

struct cancel_result {
  std::error_code setup;
  flow reader, writer;
  bool writer_blocked = false;
  bool reader_done_early = false;
};

// recv blocked on one connection, send blocked on another; cancel() both sockets.
coro::task<void> cancel_two_sockets(io::context* ctx, cancel_result* out) {
  test::socket_pair quiet = co_await test::connected_pair(ctx);
  test::socket_pair full = co_await test::connected_pair(ctx);
  if (quiet.ec || full.ec) {
    out->setup = quiet.ec ? quiet.ec : full.ec;
    co_return;
  }
  test::shrink_buffers(full.client.native_handle(), 16 * 1024);
  test::shrink_buffers(full.server.native_handle(), 16 * 1024);
  coro::scope sc;
  sc.spawn(read_once(&quiet.client, &out->reader));
  sc.spawn(write_until_blocked(&full.client, &out->writer));
  out->writer_blocked = co_await until_blocked(ctx, &out->writer);
  out->reader_done_early = out->reader.finished;
  out->writer.stop = true;
  quiet.client.cancel();
  full.client.cancel();
  co_await sc.join();
}

// One socket with a recv and a send both in flight; one cancel() ends both.
coro::task<void> cancel_read_and_write_on_one_socket(io::context* ctx, cancel_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  test::shrink_buffers(p.client.native_handle(), 16 * 1024);
  test::shrink_buffers(p.server.native_handle(), 16 * 1024);
  coro::scope sc;
  sc.spawn(read_once(&p.client, &out->reader));
  sc.spawn(write_until_blocked(&p.client, &out->writer));
  out->writer_blocked = co_await until_blocked(ctx, &out->writer);
  out->reader_done_early = out->reader.finished;
  out->writer.stop = true;
  p.client.cancel();
  co_await sc.join();
}

struct cancel_all_result {
  std::error_code setup;
  flow reader;
  std::error_code timer_ec;
  bool timer_done = false;
  std::error_code later_recv, later_wait;
};

coro::task<void> wait_long(io::timer* t, cancel_all_result* out) {
  out->timer_ec = co_await t->wait(30s);
  out->timer_done = true;
}

coro::task<void> cancel_everything(io::context* ctx, cancel_all_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  io::timer t(*ctx);
  coro::scope sc;
  sc.spawn(read_once(&p.client, &out->reader));
  sc.spawn(wait_long(&t, out));
  ctx->cancel_all();
  co_await sc.join();
  // Started after cancel_all(): these fail instead of waiting.
  std::array<std::byte, 16> buf;
  const io::io_result r = co_await p.server.recv(buf, 5s);
  out->later_recv = r.ec;
  io::timer t2(*ctx);
  out->later_wait = co_await t2.wait(5s);
}

// A cancel that races with arriving data: the read ends either with the data or with
// operation_canceled, and in the second case the byte is still there for the next read.
constexpr int race_rounds = 2000;

struct race_result {
  std::error_code setup, unexpected;
  int cancelled = 0;
  int delivered = 0;
  int lost_or_wrong = 0;
};

struct one_read {
  std::error_code ec;
  int byte = -1;  // -1: nothing read
};

coro::task<void> read_one_byte(io::socket* s, bool leased, one_read* out) {
  if (leased) {
    io::received r = co_await s->recv_any();
    out->ec = r.ec;
    if (!r.ec && r.data.size() == 1) out->byte = static_cast<int>(r.data.bytes()[0]);
  } else {
    std::array<std::byte, 1> b;
    const io::io_result r = co_await s->recv(b);
    out->ec = r.ec;
    if (!r.ec && r.bytes == 1) out->byte = static_cast<int>(b[0]);
  }
}

coro::task<void> send_one_byte(io::socket* s, int value, std::error_code* ec) {
  const std::array<std::byte, 1> b{static_cast<std::byte>(value)};
  const io::io_result w = co_await s->send(b, 5s);
  *ec = w.ec;
}

// Each round starts a read, then sends one byte and cancels the read in one of three orders: cancel
// before the send starts, right after it starts, or after it completed.
coro::task<void> cancel_races_data(io::context* ctx, bool leased, race_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  for (int i = 0; i < race_rounds; ++i) {
    const int value = i % 251;
    one_read r;
    std::error_code sent;
    coro::scope sc;
    sc.spawn(read_one_byte(&p.client, leased, &r));
    switch (i % 3) {
      case 0:
        p.client.cancel();
        sc.spawn(send_one_byte(&p.server, value, &sent));
        break;
      case 1:
        sc.spawn(send_one_byte(&p.server, value, &sent));
        p.client.cancel();
        break;
      default:
        co_await send_one_byte(&p.server, value, &sent);
        p.client.cancel();
        break;
    }
    co_await sc.join();
    if (sent) {
      out->unexpected = sent;
      break;
    }
    if (!r.ec) {
      ++out->delivered;
    } else if (io::is_cancelled(r.ec)) {
      ++out->cancelled;
      std::array<std::byte, 1> again;
      const io::io_result next = co_await p.client.recv(again, 5s);
      r.byte = !next.ec && next.bytes == 1 ? static_cast<int>(again[0]) : -1;
    } else {
      out->unexpected = r.ec;
      break;
    }
    if (r.byte != value) ++out->lost_or_wrong;
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cancel)

CPROXY_IO_TEST_CASE(cancel_blocked_recv_and_blocked_send) {
  auto ctx = io::make_context(Backend::kind);
  cancel_result res;
  test::run(*ctx, cancel_two_sockets(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(res.writer_blocked, "the writer never blocked (sent " << res.writer.bytes << " bytes)");
  BOOST_TEST(!res.reader_done_early);
  BOOST_TEST(res.reader.finished);
  BOOST_TEST(res.writer.finished);
  BOOST_TEST(io::is_cancelled(res.reader.ec), "recv: got " << res.reader.ec.message());
  BOOST_TEST(io::is_cancelled(res.writer.ec), "send: got " << res.writer.ec.message());
}

CPROXY_IO_TEST_CASE(one_cancel_ends_read_and_write_on_one_socket) {
  auto ctx = io::make_context(Backend::kind);
  cancel_result res;
  test::run(*ctx, cancel_read_and_write_on_one_socket(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(res.writer_blocked, "the writer never blocked (sent " << res.writer.bytes << " bytes)");
  BOOST_TEST(!res.reader_done_early);
  BOOST_TEST(io::is_cancelled(res.reader.ec), "recv: got " << res.reader.ec.message());
  BOOST_TEST(io::is_cancelled(res.writer.ec), "send: got " << res.writer.ec.message());
}

CPROXY_IO_TEST_CASE(cancel_all_ends_operations_and_fails_later_ones) {
  auto ctx = io::make_context(Backend::kind);
  cancel_all_result res;
  test::run(*ctx, cancel_everything(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(io::is_cancelled(res.reader.ec), "recv: got " << res.reader.ec.message());
  BOOST_TEST(res.timer_done);
  BOOST_TEST(io::is_cancelled(res.timer_ec), "wait: got " << res.timer_ec.message());
  BOOST_TEST(io::is_cancelled(res.later_recv), "recv after cancel_all: got " << res.later_recv.message());
  BOOST_TEST(io::is_cancelled(res.later_wait), "wait after cancel_all: got " << res.later_wait.message());
}

CPROXY_IO_TEST_CASE(cancel_racing_with_data_loses_no_bytes) {
  for (const bool leased : {false, true}) {
    BOOST_TEST_CONTEXT((leased ? "recv_any" : "recv")) {
      auto ctx = io::make_context(Backend::kind);
      race_result res;
      test::run(*ctx, cancel_races_data(ctx.get(), leased, &res));
      BOOST_TEST(!res.setup, res.setup.message());
      BOOST_TEST(!res.unexpected, res.unexpected.message());
      BOOST_TEST(res.cancelled + res.delivered == race_rounds);
      BOOST_TEST(res.lost_or_wrong == 0);
      BOOST_TEST_MESSAGE(io::to_string(Backend::kind)
                         << (leased ? " recv_any" : " recv") << ": " << res.cancelled << " cancelled, "
                         << res.delivered << " delivered");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
