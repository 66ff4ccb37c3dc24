// Partial reads and writes on every backend: 8 MiB through send() with short writes handled by the
// caller while the peer reads 1000 bytes at a time; writev_all and writev over several iovecs.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
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

constexpr std::size_t big = 8u << 20;
constexpr std::size_t small_read = 1000;

struct writer_stats {
  std::error_code ec;
  std::size_t sent = 0;
  std::size_t calls = 0;
  std::size_t short_writes = 0;
};

struct reader_stats {
  std::error_code ec;
  std::size_t received = 0;
  std::size_t reads = 0;
  std::size_t oversized = 0;           // reads that returned more than was asked for
  std::size_t mismatch_at = SIZE_MAX;  // stream offset of the first wrong byte
  bool eof = false;
};

// send() in a loop: every call may take fewer bytes than offered; the caller carries on from there.
coro::task<void> send_with_short_writes(io::socket* s, std::span<const std::byte> data, writer_stats* out) {
  while (out->sent < data.size() && out->calls < data.size()) {  // each call moves >= 1 byte or fails
    const std::span<const std::byte> rest = data.subspan(out->sent);
    const io::io_result r = co_await s->send(rest, 10s);
    ++out->calls;
    if (r.ec) {
      out->ec = r.ec;
      break;
    }
    if (r.bytes < rest.size()) ++out->short_writes;
    out->sent += r.bytes;
  }
  s->shutdown_send();
}

// Reads `chunk` bytes at a time until EOF, checking each slice against the stream `seed`.
coro::task<void> read_in_small_chunks(io::socket* s, std::uint64_t seed, std::size_t chunk, std::size_t limit,
                                      reader_stats* out) {
  std::vector<std::byte> buf(chunk);
  while (out->received <= limit) {
    const io::io_result r = co_await s->recv(buf, 10s);
    if (r.ec) {
      out->ec = r.ec;
      break;
    }
    if (r.bytes == 0) {
      out->eof = true;
      break;
    }
    ++out->reads;
    if (r.bytes > chunk) {
      ++out->oversized;
      break;
    }
    const std::span<const std::byte> got(buf.data(), r.bytes);
    const std::size_t bad = test::first_mismatch(seed, out->received, got);
    if (bad != got.size() && out->mismatch_at == SIZE_MAX) out->mismatch_at = out->received + bad;
    out->received += r.bytes;
  }
}

struct big_send_result {
  std::error_code setup;
  writer_stats w;
  reader_stats r;
};

coro::task<void> big_send_small_reads(io::context* ctx, big_send_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  // Small kernel buffers make short writes likely; whether they happen is the backend's business.
  test::shrink_buffers(p.server.native_handle(), 64 * 1024);
  test::shrink_buffers(p.client.native_handle(), 64 * 1024);
  std::vector<std::byte> data(big);
  test::fill_pattern(1, 0, data);
  coro::scope sc;
  sc.spawn(send_with_short_writes(&p.server, data, &out->w));
  co_await read_in_small_chunks(&p.client, 1, small_read, big, &out->r);
  co_await sc.join();
}

// writev_all over iovecs of awkward sizes (one empty, one of 1 byte, two of megabytes: those cannot go
// in one system call, so writev_all must resume in the middle of an iovec), then a plain writev.
struct writev_result {
  std::error_code setup, writev_all_ec, writev_ec;
  std::size_t writev_all_bytes = 0;
  std::size_t writev_bytes = 0;
  std::size_t total = 0;
  reader_stats r;
};

coro::task<void> writev_then_eof(io::socket* s, std::span<const std::byte> data, writev_result* out) {
  const std::size_t sizes[] = {1, 0, 4096, (1u << 20) + 7, (3u << 20) - 1, 13};
  std::vector<io::const_buffer> iov;
  std::size_t off = 0;
  for (std::size_t n : sizes) {
    iov.push_back({data.data() + off, n});
    off += n;
  }
  const io::io_result all = co_await s->writev_all(iov, 10s);
  out->writev_all_ec = all.ec;
  out->writev_all_bytes = all.bytes;

  // A single writev of three small pieces: any count from 1 to their sum is correct; send the rest.
  const std::array<io::const_buffer, 3> tail{
      {{data.data() + off, 10}, {data.data() + off + 10, 100}, {data.data() + off + 110, 1000}}};
  const io::io_result one = co_await s->writev(tail, 10s);
  out->writev_ec = one.ec;
  out->writev_bytes = one.bytes;
  if (!one.ec && one.bytes <= 1110) {
    const std::span<const std::byte> rest = data.subspan(off + one.bytes, 1110 - one.bytes);
    const io::io_result r = co_await s->send_all(rest, 10s);
    if (r.ec) out->writev_ec = r.ec;
  }
  out->total = off + 1110;
  s->shutdown_send();
}

coro::task<void> writev_round(io::context* ctx, writev_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  std::vector<std::byte> data(5u << 20);
  test::fill_pattern(2, 0, data);
  coro::scope sc;
  sc.spawn(writev_then_eof(&p.server, data, out));
  co_await read_in_small_chunks(&p.client, 2, 64 * 1024, data.size(), &out->r);
  co_await sc.join();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(partial_io)

CPROXY_IO_TEST_CASE(big_send_with_short_writes_small_reads) {
  auto ctx = io::make_context(Backend::kind);
  big_send_result res;
  test::run(*ctx, big_send_small_reads(ctx.get(), &res), 120s);
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(!res.w.ec, "send: " << res.w.ec.message());
  BOOST_TEST(!res.r.ec, "recv: " << res.r.ec.message());
  BOOST_TEST(res.w.sent == big);
  BOOST_TEST(res.r.received == big);
  BOOST_TEST(res.r.eof);
  BOOST_TEST(res.r.oversized == 0u);
  BOOST_TEST(res.r.mismatch_at == SIZE_MAX, "first wrong byte at offset " << res.r.mismatch_at);
  BOOST_TEST(res.r.reads >= big / small_read);
  BOOST_TEST_MESSAGE(io::to_string(Backend::kind)
                     << ": " << res.w.calls << " send() calls, " << res.w.short_writes << " short; "
                     << res.r.reads << " reads");
}

CPROXY_IO_TEST_CASE(writev_all_and_writev_over_several_iovecs) {
  auto ctx = io::make_context(Backend::kind);
  writev_result res;
  test::run(*ctx, writev_round(ctx.get(), &res), 120s);
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(!res.writev_all_ec, "writev_all: " << res.writev_all_ec.message());
  BOOST_TEST(!res.writev_ec, "writev: " << res.writev_ec.message());
  BOOST_TEST(res.writev_all_bytes == res.total - 1110);
  BOOST_TEST(res.writev_bytes >= 1u);
  BOOST_TEST(res.writev_bytes <= 1110u);
  BOOST_TEST(!res.r.ec, "recv: " << res.r.ec.message());
  BOOST_TEST(res.r.received == res.total);
  BOOST_TEST(res.r.eof);
  BOOST_TEST(res.r.mismatch_at == SIZE_MAX, "first wrong byte at offset " << res.r.mismatch_at);
}

BOOST_AUTO_TEST_SUITE_END()
