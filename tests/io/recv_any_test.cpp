// recv_any on every backend: leased buffers deliver exactly the bytes sent, in order; a held lease is
// not reused under the reader, even with more leases held than the backend pools; leases go back to
// the backend (thousands of reads on one pool); and the counters show where they came from.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
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

constexpr std::uint64_t seed = 11;
constexpr std::size_t rounds = 5000;  // far more leases than any pool holds
constexpr std::size_t message = 100;
constexpr std::size_t bulk = 16u << 20;
constexpr std::size_t small_window = 4;    // leases the reader keeps at once during the bulk phase
constexpr std::size_t large_window = 400;  // more than a backend pools (uring: 64): it must cope

struct result {
  std::error_code setup, sender, receiver;
  std::size_t received = 0;
  std::size_t leases = 0;
  std::size_t empty_with_data = 0;  // an empty lease that was not EOF
  std::size_t mismatch_at = SIZE_MAX;
  bool eof = false;
};

void check(result* out, std::uint64_t offset, std::span<const std::byte> got) {
  const std::size_t bad = test::first_mismatch(seed, offset, got);
  if (bad != got.size() && out->mismatch_at == SIZE_MAX) out->mismatch_at = offset + bad;
}

// Sends `rounds` messages of 100 bytes, each after the previous one was acknowledged (so each read sees
// one message or part of one), then 16 MiB in one go, then EOF. All one stream named `seed`.
coro::task<void> sender(io::socket* s, result* out) {
  std::array<std::byte, message> msg;
  std::uint64_t off = 0;
  for (std::size_t i = 0; i < rounds; ++i, off += message) {
    test::fill_pattern(seed, off, msg);
    const io::io_result w = co_await s->send_all(msg, 10s);
    if (w.ec) {
      out->sender = w.ec;
      co_return;
    }
    std::array<std::byte, 1> ack;
    const io::io_result r = co_await s->recv(ack, 10s);
    if (r.ec || r.bytes != 1) {
      out->sender = r.ec ? r.ec : std::make_error_code(std::errc::connection_aborted);
      co_return;
    }
  }
  std::vector<std::byte> data(bulk);
  test::fill_pattern(seed, off, data);
  const io::io_result w = co_await s->send_all(data, 10s);
  if (w.ec) out->sender = w.ec;
  s->shutdown_send();
}

struct held {
  std::uint64_t offset;
  io::buffer_lease lease;
};

coro::task<void> receiver(io::socket* s, std::size_t held_window, result* out) {
  // Ping-pong phase: one lease at a time, released at once.
  for (std::size_t i = 0; i < rounds; ++i) {
    const std::size_t end = (i + 1) * message;
    while (out->received < end) {
      io::received r = co_await s->recv_any(10s);
      if (r.ec) {
        out->receiver = r.ec;
        co_return;
      }
      if (r.data.empty()) {
        out->receiver = std::make_error_code(std::errc::connection_aborted);  // EOF too early
        co_return;
      }
      ++out->leases;
      check(out, out->received, r.data.bytes());
      out->received += r.data.size();
    }
    const std::array<std::byte, 1> ack{std::byte{1}};
    const io::io_result w = co_await s->send_all(ack, 10s);
    if (w.ec) {
      out->receiver = w.ec;
      co_return;
    }
  }
  // Bulk phase: keep the last few leases and check them only later, after further reads: a backend
  // that hands a leased buffer to another read would have overwritten them by then.
  std::deque<held> window;
  const std::size_t limit = rounds * message + bulk;
  while (out->received <= limit) {
    io::received r = co_await s->recv_any(10s);
    if (r.ec) {
      out->receiver = r.ec;
      break;
    }
    if (r.data.empty()) {
      out->eof = true;
      break;
    }
    ++out->leases;
    const std::uint64_t off = out->received;
    out->received += r.data.size();
    window.push_back(held{off, std::move(r.data)});
    if (window.size() > held_window) {
      check(out, window.front().offset, window.front().lease.bytes());
      window.pop_front();  // gives the buffer back
    }
  }
  for (const held& h : window) check(out, h.offset, h.lease.bytes());
}

coro::task<void> leased_stream(io::context* ctx, std::size_t held_window, result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  coro::scope sc;
  sc.spawn(sender(&p.client, out));
  co_await receiver(&p.server, held_window, out);
  if (out->receiver) p.client.cancel();  // the sender may wait for an ack that will not come
  co_await sc.join();
}

// Many connections each holding a lease at once (a proxy whose upstreams are slow): every lease keeps
// its own bytes until released, even when there are more of them than the backend pools.
constexpr std::size_t holders = 300;
constexpr std::size_t per_holder = 1000;

struct holder_result {
  std::error_code setup;
  std::size_t failed = 0;
  std::error_code first_error;
  std::vector<io::buffer_lease> leases;
  std::vector<std::uint64_t> seeds;
};

coro::task<void> take_one_lease(io::socket* s, std::uint64_t id, holder_result* out) {
  io::received r = co_await s->recv_any(10s);
  if (r.ec || r.data.empty()) {
    if (!out->first_error) out->first_error = r.ec;
    ++out->failed;
    co_return;
  }
  out->seeds.push_back(id);
  out->leases.push_back(std::move(r.data));
}

coro::task<void> many_held_leases(io::context* ctx, holder_result* out, std::size_t* intact) {
  std::vector<test::socket_pair> pairs;
  for (std::size_t i = 0; i < holders; ++i) {
    test::socket_pair p = co_await test::connected_pair(ctx);
    if (p.ec) {
      out->setup = p.ec;
      co_return;
    }
    pairs.push_back(std::move(p));
  }
  coro::scope sc;
  for (std::size_t i = 0; i < holders; ++i) sc.spawn(take_one_lease(&pairs[i].server, i, out));
  for (std::size_t i = 0; i < holders; ++i) {
    std::array<std::byte, per_holder> msg;
    test::fill_pattern(1000 + i, 0, msg);
    const io::io_result w = co_await pairs[i].client.send_all(msg, 10s);
    if (w.ec && !out->first_error) out->first_error = w.ec;
  }
  co_await sc.join();
  // Every lease is still held here; a short read is fine (the rest stays in the socket).
  for (std::size_t k = 0; k < out->leases.size(); ++k) {
    const std::span<const std::byte> got = out->leases[k].bytes();
    if (got.size() <= per_holder && test::matches_pattern(1000 + out->seeds[k], 0, got)) ++*intact;
  }
  out->leases.clear();  // back to the backend while the context is alive
}

// Where the leases came from. Holding large_window leases must also have run the uring ENOBUFS
// fallback. Every lease and every acknowledgement (recv, one byte each) is counted.
void check_sources(const io::context& ctx, const result& res, std::size_t held_window) {
  const io::io_counters& n = ctx.counters();
  BOOST_TEST_MESSAGE(io::to_string(ctx.kind())
                     << ": " << n.provided_buffer_recvs << " receives into provided buffers, "
                     << n.pooled_buffer_recvs << " into pooled buffers, of " << res.leases << " leases");
  BOOST_TEST(n.provided_buffer_recvs + n.pooled_buffer_recvs == res.leases);
  BOOST_TEST(n.received_bytes == res.received + rounds);
  if (ctx.kind() == io::backend_kind::asio) {
    BOOST_TEST(n.provided_buffer_recvs == 0u);
    return;
  }
  if (!ctx.caps().provided_buffers) {
    BOOST_TEST_MESSAGE("uring without provided buffers on this kernel: that path is NOT tested");
    std::cerr << "*** WARNING: io_uring here has no provided buffer ring: "
              << boost::unit_test::framework::current_test_case().full_name()
              << " checks pooled buffers only\n";
    BOOST_TEST(n.provided_buffer_recvs == 0u);
    return;
  }
  // The ping-pong phase holds one lease at a time, so the ring never runs dry there.
  BOOST_TEST(n.provided_buffer_recvs >= rounds);
  if (held_window >= large_window)
    BOOST_TEST(n.pooled_buffer_recvs > 0u,
               "holding more leases than the ring has never fell back to pooled buffers");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(recv_any)

CPROXY_IO_TEST_CASE(leased_reads_deliver_the_exact_stream) {
  auto ctx = io::make_context(Backend::kind);
  result res;
  test::run(*ctx, leased_stream(ctx.get(), small_window, &res), 120s);
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(!res.sender, "sender: " << res.sender.message());
  BOOST_TEST(!res.receiver, "receiver: " << res.receiver.message());
  BOOST_TEST(res.received == rounds * message + bulk);
  BOOST_TEST(res.eof);
  BOOST_TEST(res.mismatch_at == SIZE_MAX, "first wrong byte at offset " << res.mismatch_at);
  BOOST_TEST(res.leases >= rounds);
  check_sources(*ctx, res, small_window);
}

CPROXY_IO_TEST_CASE(holding_more_leases_than_the_pool) {
  auto ctx = io::make_context(Backend::kind);
  result res;
  test::run(*ctx, leased_stream(ctx.get(), large_window, &res), 120s);
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(!res.sender, "sender: " << res.sender.message());
  BOOST_TEST(!res.receiver, "receiver: " << res.receiver.message());
  BOOST_TEST(res.received == rounds * message + bulk);
  BOOST_TEST(res.eof);
  BOOST_TEST(res.mismatch_at == SIZE_MAX, "first wrong byte at offset " << res.mismatch_at);
  check_sources(*ctx, res, large_window);
}

CPROXY_IO_TEST_CASE(many_connections_each_holding_a_lease) {
  auto ctx = io::make_context(Backend::kind);
  holder_result res;
  std::size_t intact = 0;
  test::run(*ctx, many_held_leases(ctx.get(), &res, &intact), 120s);
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(res.failed == 0u, "first: " << res.first_error.message());
  BOOST_TEST(res.seeds.size() == holders);
  BOOST_TEST(intact == holders);
}

BOOST_AUTO_TEST_SUITE_END()
