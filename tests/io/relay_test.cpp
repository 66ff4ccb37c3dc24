// splice_to on every backend: client -> relay -> sink and back, 64 MiB forward and 8 MiB in reverse at
// once, with FNV-1a 64 compared at both ends. Runs whether or not caps().splice (the fallback copies),
// and the context's counters must show which path ran: splice on uring, copies on asio.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <vector>

#include "connect/coro/scope.hpp"
#include "support/backends.hpp"
#include "support/bytes.hpp"
#include "support/loopback.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

struct side {
  std::error_code send_ec, recv_ec;
  test::fnv1a64 sent, received;
  bool eof = false;
};

struct pump_stats {
  std::error_code ec;
  std::size_t bytes = 0;
  std::size_t calls = 0;
  bool eof = false;
};

struct relay_result {
  std::error_code setup;
  side client, sink;
  pump_stats up, down;  // up: client -> sink, down: sink -> client
};

// Writes `total` bytes of the stream `seed` in 256 KiB pieces, hashing them, then shuts down sending.
coro::task<void> produce(io::socket* s, std::uint64_t seed, std::size_t total, side* out) {
  std::vector<std::byte> chunk(256u << 10);
  for (std::size_t off = 0; off < total; off += chunk.size()) {
    const std::span<std::byte> piece(chunk.data(), std::min(chunk.size(), total - off));
    test::fill_pattern(seed, off, piece);
    out->sent.update(piece);
    const io::io_result w = co_await s->send_all(piece, 30s);
    if (w.ec) {
      out->send_ec = w.ec;
      break;
    }
  }
  s->shutdown_send();
}

// Reads until EOF (bounded by `limit` bytes), hashing what arrives.
coro::task<void> consume(io::socket* s, std::size_t limit, side* out) {
  std::vector<std::byte> buf(64u << 10);
  while (out->received.count() <= limit) {
    const io::io_result r = co_await s->recv(buf, 30s);
    if (r.ec) {
      out->recv_ec = r.ec;
      break;
    }
    if (r.bytes == 0) {
      out->eof = true;
      break;
    }
    out->received.update(std::span<const std::byte>(buf.data(), r.bytes));
  }
}

// One direction of the relay: splice_to until EOF, then pass the EOF on.
coro::task<void> pump(io::socket* from, io::socket* to, std::size_t max, std::size_t limit, pump_stats* out) {
  while (out->bytes <= limit) {
    const io::io_result r = co_await from->splice_to(*to, max);
    ++out->calls;
    if (r.ec) {
      out->ec = r.ec;
      break;
    }
    if (r.bytes == 0) {
      out->eof = true;
      break;
    }
    out->bytes += r.bytes;
  }
  to->shutdown_send();
}

struct plan {
  std::size_t splice_max;  // the most one splice_to may move
  std::size_t forward;     // client -> sink
  std::size_t reverse;     // sink -> client
};

coro::task<void> relay_round(io::context* ctx, plan how, relay_result* out) {
  io::listen_socket relay_l = test::listen_loopback(out->setup);
  if (out->setup) co_return;
  io::acceptor relay_acc = test::make_acceptor(*ctx, relay_l, out->setup);
  if (out->setup) co_return;
  io::listen_socket sink_l = test::listen_loopback(out->setup);
  if (out->setup) co_return;
  io::acceptor sink_acc = test::make_acceptor(*ctx, sink_l, out->setup);
  if (out->setup) co_return;

  // client --(C/A)--> relay --(U/S)--> sink
  test::connected c = co_await test::connect_loopback(ctx, test::port_of(relay_l));
  if (c.ec) {
    out->setup = c.ec;
    co_return;
  }
  io::accepted a = co_await relay_acc.accept();
  if (a.ec) {
    out->setup = a.ec;
    co_return;
  }
  test::connected u = co_await test::connect_loopback(ctx, test::port_of(sink_l));
  if (u.ec) {
    out->setup = u.ec;
    co_return;
  }
  io::accepted s = co_await sink_acc.accept();
  if (s.ec) {
    out->setup = s.ec;
    co_return;
  }

  coro::scope sc;
  sc.spawn(pump(&a.peer, &u.s, how.splice_max, how.forward, &out->up));
  sc.spawn(pump(&u.s, &a.peer, how.splice_max, how.reverse, &out->down));
  sc.spawn(consume(&s.peer, how.forward, &out->sink));
  sc.spawn(produce(&s.peer, 2, how.reverse, &out->sink));
  sc.spawn(consume(&c.s, how.reverse, &out->client));
  sc.spawn(produce(&c.s, 1, how.forward, &out->client));
  co_await sc.join();
}

void check(const relay_result& res, const plan& how) {
  BOOST_TEST(!res.setup, "setup: " << res.setup.message());
  BOOST_TEST(!res.client.send_ec, "client send: " << res.client.send_ec.message());
  BOOST_TEST(!res.client.recv_ec, "client recv: " << res.client.recv_ec.message());
  BOOST_TEST(!res.sink.send_ec, "sink send: " << res.sink.send_ec.message());
  BOOST_TEST(!res.sink.recv_ec, "sink recv: " << res.sink.recv_ec.message());
  BOOST_TEST(!res.up.ec, "relay up: " << res.up.ec.message());
  BOOST_TEST(!res.down.ec, "relay down: " << res.down.ec.message());
  BOOST_TEST(res.up.eof);
  BOOST_TEST(res.down.eof);
  BOOST_TEST(res.up.bytes == how.forward);
  BOOST_TEST(res.down.bytes == how.reverse);
  BOOST_TEST(res.client.sent.count() == how.forward);
  BOOST_TEST(res.sink.received.count() == how.forward);
  BOOST_TEST(res.sink.received.value() == res.client.sent.value());
  BOOST_TEST(res.sink.sent.count() == how.reverse);
  BOOST_TEST(res.client.received.count() == how.reverse);
  BOOST_TEST(res.client.received.value() == res.sink.sent.value());
  BOOST_TEST(res.sink.eof);
  BOOST_TEST(res.client.eof);
  BOOST_TEST_MESSAGE("splice_to calls: up " << res.up.calls << ", down " << res.down.calls);
}

// The path splice_to took, from the context's counters. `splice` is caps().splice before the run: a
// context that turned splice off on the way (EINVAL) fails here, which is the point.
void check_path(const io::context& ctx, bool splice, const relay_result& res, const plan& how) {
  const io::io_counters& n = ctx.counters();
  const std::uint64_t relayed = how.forward + how.reverse;
  BOOST_TEST_MESSAGE(io::to_string(ctx.kind())
                     << ": " << n.splice_calls << " splices moved " << n.spliced_bytes << " bytes, "
                     << n.copy_fallback_bytes << " bytes copied instead, " << n.received_bytes
                     << " bytes received into user space (" << relayed << " relayed)");
  if (splice) {
    BOOST_TEST(n.spliced_bytes == relayed, "every relayed byte must go through a pipe");
    BOOST_TEST(n.copy_fallback_bytes == 0u);
    BOOST_TEST(n.splice_calls == res.up.calls + res.down.calls);
    // Only the ends read into user space; the relay itself never did.
    BOOST_TEST(n.received_bytes == relayed);
    return;
  }
  if (ctx.kind() == io::backend_kind::uring) {
    BOOST_TEST_MESSAGE("uring without splice on this kernel: the zero-copy path is NOT tested");
    std::cerr << "*** WARNING: io_uring here cannot splice: "
              << boost::unit_test::framework::current_test_case().full_name()
              << " checks the copying fallback only\n";
  }
  BOOST_TEST(n.splice_calls == 0u);
  BOOST_TEST(n.spliced_bytes == 0u);
  BOOST_TEST(n.copy_fallback_bytes == relayed);
  // The relay's copies and the ends' reads.
  BOOST_TEST(n.received_bytes == 2 * relayed);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(relay)

CPROXY_IO_TEST_CASE(splice_relay_64MiB_both_directions) {
  auto ctx = io::make_context(Backend::kind);
  BOOST_TEST_MESSAGE(io::to_string(Backend::kind) << ": caps().splice=" << ctx->caps().splice
                                                  << " (false: splice_to copies through user space)");
  const plan how{256u << 10, 64u << 20, 8u << 20};
  relay_result res;
  const bool splice = ctx->caps().splice;
  test::run(*ctx, relay_round(ctx.get(), how, &res), 240s);
  check(res, how);
  check_path(*ctx, splice, res, how);
}

// Pieces smaller than a leased buffer: the copying fallback reads into its own buffer then.
CPROXY_IO_TEST_CASE(splice_relay_in_small_pieces) {
  auto ctx = io::make_context(Backend::kind);
  const plan how{1000, 8u << 20, 1u << 20};
  relay_result res;
  const bool splice = ctx->caps().splice;
  test::run(*ctx, relay_round(ctx.get(), how, &res), 240s);
  check(res, how);
  check_path(*ctx, splice, res, how);
}

BOOST_AUTO_TEST_SUITE_END()
