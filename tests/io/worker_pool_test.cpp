// worker_pool shutdown on every backend: with 50 idle connections open, stop(grace) returns, every
// handler frame has run to its end and the clients see their connection closed; busy connections get
// their grace. Pool threads only count (atomics); the test thread asserts after stop().
#include "connect/io/worker_pool.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <vector>

#include "connect/io/timer.hpp"
#include "support/backends.hpp"
#include "support/loopback.hpp"
#include "support/posix_client.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

constexpr std::size_t idle_clients = 50;

struct counters {
  std::atomic<std::size_t> started{0};
  std::atomic<std::size_t> finished{0};   // reached the end of the handler's body
  std::atomic<std::size_t> destroyed{0};  // its locals were destroyed (body ended or frame destroyed)
  std::atomic<std::size_t> cancelled{0};  // the read ended with operation_canceled
  std::atomic<std::size_t> other_end{0};  // ended by EOF or another error
  std::atomic<std::size_t> on_start{0};
};

struct count_on_exit {
  std::atomic<std::size_t>* n;
  ~count_on_exit() { n->fetch_add(1); }
};

// An echo handler for idle peers: it waits in recv without a timeout until data, EOF or cancellation.
coro::task<void> idle_echo(io::socket s, counters* c) {
  const count_on_exit guard{&c->destroyed};
  c->started.fetch_add(1);
  std::array<std::byte, 4096> buf;
  for (int i = 0; i < 1000; ++i) {
    const io::io_result r = co_await s.recv(buf);
    if (r.ec || r.bytes == 0) {
      (io::is_cancelled(r.ec) ? c->cancelled : c->other_end).fetch_add(1);
      break;
    }
    const io::io_result w = co_await s.send_all(std::span<const std::byte>(buf.data(), r.bytes), 5s);
    if (w.ec) {
      c->other_end.fetch_add(1);
      break;
    }
  }
  c->finished.fetch_add(1);
}

struct busy_counters {
  std::atomic<std::size_t> started{0};
  std::atomic<std::size_t> answered{0};  // got the request, waited, sent the answer
  std::atomic<std::size_t> failed{0};
};

// A request/response handler that takes its time: reads 4 bytes, waits 100 ms on its worker's context,
// answers, and ends. A stop() with a long grace must let it finish.
coro::task<void> slow_answer(io::socket s, io::worker* w, busy_counters* c) {
  c->started.fetch_add(1);
  std::array<std::byte, 4> req;
  const io::io_result r = co_await test::recv_exact(&s, req, 5s);
  if (r.ec || r.bytes != req.size()) {
    c->failed.fetch_add(1);
    co_return;
  }
  io::timer t(w->ctx());
  const std::error_code waited = co_await t.wait(100ms);
  const io::io_result a = co_await s.send_all(req, 5s);
  if (waited || a.ec) {
    c->failed.fetch_add(1);
    co_return;
  }
  c->answered.fetch_add(1);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(worker_pool)

CPROXY_IO_TEST_CASE(stop_with_idle_connections_open) {
  std::error_code ec;
  io::listen_socket l = test::listen_loopback(ec);
  BOOST_REQUIRE_MESSAGE(!ec, ec.message());
  counters c;
  auto pool = std::make_unique<io::worker_pool>(
      l, io::worker_pool::options{Backend::kind, 2},
      [&c](io::socket s, io::worker&) { return idle_echo(std::move(s), &c); },
      [&c](io::worker&) { c.on_start.fetch_add(1); });
  BOOST_REQUIRE(pool->size() == 2u);
  BOOST_TEST(c.on_start.load() == 2u);

  std::vector<test::blocking_client> clients;
  for (std::size_t i = 0; i < idle_clients; ++i) {
    test::blocking_client cl = test::blocking_client::connect(test::port_of(l), 5000ms, ec);
    BOOST_REQUIRE_MESSAGE(!ec, "client " << i << ": " << ec.message());
    clients.push_back(std::move(cl));
  }
  // One echo proves a handler is live; then wait until every connection has its handler.
  const std::array<std::byte, 3> ping{std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
  BOOST_REQUIRE(!clients.front().send_all(ping));
  std::array<std::byte, 3> pong{};
  bool eof = false;
  BOOST_REQUIRE(!clients.front().recv_exact(pong, eof));
  BOOST_TEST((pong == ping));
  BOOST_REQUIRE_MESSAGE(test::poll_until([&] { return c.started.load() == idle_clients; }, 10s),
                        "only " << c.started.load() << " of " << idle_clients << " handlers started");

  pool->stop(200ms);  // the connections stay idle: the grace runs out and they are cancelled
  BOOST_TEST(c.started.load() == idle_clients);
  BOOST_TEST(c.finished.load() == idle_clients);
  BOOST_TEST(c.destroyed.load() == idle_clients);
  BOOST_TEST(c.cancelled.load() == idle_clients, c.other_end.load() << " handlers ended otherwise");
  pool->stop(200ms);  // idempotent
  pool.reset();

  // The server side of every connection is closed now: each client reads EOF (or a reset), not a timeout.
  std::size_t closed = 0;
  for (test::blocking_client& cl : clients) {
    std::array<std::byte, 16> buf;
    std::size_t n = 0;
    const std::error_code rec = cl.recv_some(buf, n);
    if ((!rec && n == 0) || rec == std::errc::connection_reset) ++closed;
  }
  BOOST_TEST(closed == idle_clients);
}

CPROXY_IO_TEST_CASE(stop_with_no_connections) {
  std::error_code ec;
  io::listen_socket l = test::listen_loopback(ec);
  BOOST_REQUIRE_MESSAGE(!ec, ec.message());
  counters c;
  io::worker_pool pool(l, io::worker_pool::options{Backend::kind, 2},
                       [&c](io::socket s, io::worker&) { return idle_echo(std::move(s), &c); });
  pool.stop(0ms);
  BOOST_TEST(c.started.load() == 0u);
}

CPROXY_IO_TEST_CASE(stop_lets_busy_connections_finish_within_grace) {
  std::error_code ec;
  io::listen_socket l = test::listen_loopback(ec);
  BOOST_REQUIRE_MESSAGE(!ec, ec.message());
  busy_counters c;
  io::worker_pool pool(l, io::worker_pool::options{Backend::kind, 2},
                       [&c](io::socket s, io::worker& w) { return slow_answer(std::move(s), &w, &c); });
  constexpr std::size_t busy = 10;
  std::vector<test::blocking_client> clients;
  const std::array<std::byte, 4> req{std::byte{'p'}, std::byte{'i'}, std::byte{'n'}, std::byte{'g'}};
  for (std::size_t i = 0; i < busy; ++i) {
    test::blocking_client cl = test::blocking_client::connect(test::port_of(l), 5000ms, ec);
    BOOST_REQUIRE_MESSAGE(!ec, "client " << i << ": " << ec.message());
    BOOST_REQUIRE(!cl.send_all(req));
    clients.push_back(std::move(cl));
  }
  BOOST_REQUIRE_MESSAGE(test::poll_until([&] { return c.started.load() == busy; }, 10s),
                        "only " << c.started.load() << " of " << busy << " handlers started");
  pool.stop(10s);  // far longer than the handlers need
  BOOST_TEST(c.answered.load() == busy, c.failed.load() << " handlers failed");
  std::size_t answers = 0;
  for (test::blocking_client& cl : clients) {
    std::array<std::byte, 4> got{};
    bool eof = false;
    if (!cl.recv_exact(got, eof) && !eof && got == req) ++answers;
  }
  BOOST_TEST(answers == busy);
}

BOOST_AUTO_TEST_SUITE_END()
