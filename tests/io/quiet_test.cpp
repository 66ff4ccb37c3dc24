// socket::quiet on every backend: the check the upstream pool makes before it reuses a connection. It
// answers at once (it never waits for data), tells an open idle connection from one with bytes waiting
// or one the peer closed, and leaves the waiting bytes to be read.
#include <array>
#include <chrono>
#include <cstddef>

#include "support/backends.hpp"
#include "support/loopback.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

struct answers {
  std::error_code setup;
  int idle = -1;        // nothing sent yet
  int idle_again = -1;  // asked twice: the first answer consumed nothing
  int with_bytes = -1;  // the peer sent two bytes
  std::size_t read_after = 0;
  char first = 0, second = 0;
  int after_eof = -1;  // the peer closed its side
};

coro::task<bool> ask(io::socket* s) {
  coro::task<bool> check = s->quiet();
  const bool quiet = co_await std::move(check);
  co_return quiet;
}

coro::task<void> ask_through_a_connection(io::context* ctx, answers* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  out->idle = co_await ask(&p.server);
  out->idle_again = co_await ask(&p.server);

  const std::array<std::byte, 2> stray{std::byte{'h'}, std::byte{'i'}};
  const io::io_result sent = co_await p.client.send_all(stray, 10s);
  if (sent.ec) {
    out->setup = sent.ec;
    co_return;
  }
  // Loopback delivers before send returns; a retry bound covers a slow machine anyway.
  for (int i = 0; i < 100; ++i) {
    out->with_bytes = co_await ask(&p.server);
    if (out->with_bytes == 0) break;
    io::timer pause(*ctx);
    co_await pause.wait(10ms);
  }
  std::array<std::byte, 2> got{};
  const io::io_result r = co_await test::recv_exact(&p.server, got, 10s);
  out->read_after = r.bytes;
  out->first = static_cast<char>(got[0]);
  out->second = static_cast<char>(got[1]);

  p.client.shutdown_send();
  for (int i = 0; i < 100; ++i) {
    out->after_eof = co_await ask(&p.server);
    if (out->after_eof == 0) break;
    io::timer pause(*ctx);
    co_await pause.wait(10ms);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(socket_quiet)

CPROXY_IO_TEST_CASE(quiet_tells_idle_from_waiting_bytes_and_eof_without_waiting) {
  auto ctx = io::make_context(Backend::kind);
  answers a;
  // An answer that waited for data would never come for the idle socket: the watchdog would fire.
  test::run(*ctx, ask_through_a_connection(ctx.get(), &a), 30s);
  BOOST_TEST(!a.setup, a.setup.message());
  BOOST_TEST(a.idle == 1);
  BOOST_TEST(a.idle_again == 1);
  BOOST_TEST(a.with_bytes == 0);
  BOOST_TEST(a.read_after == 2u);
  BOOST_TEST(a.first == 'h');
  BOOST_TEST(a.second == 'i');
  BOOST_TEST(a.after_eof == 0);
}

BOOST_AUTO_TEST_SUITE_END()
