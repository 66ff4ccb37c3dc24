// 1000 concurrent connections on every backend, each sending a message and reading its echo: once with
// server and clients on one context, once with a two-thread worker_pool serving a client context.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "connect/core/process_limits.hpp"
#include "connect/coro/scope.hpp"
#include "connect/io/worker_pool.hpp"
#include "support/backends.hpp"
#include "support/bytes.hpp"
#include "support/loopback.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

constexpr std::size_t connections = 1000;
constexpr std::size_t message = 200;

struct client_results {
  std::size_t ok = 0;
  std::size_t failed = 0;
  std::error_code first_error;
  void fail(std::error_code ec) {
    if (!first_error) first_error = ec ? ec : std::make_error_code(std::errc::bad_message);
    ++failed;
  }
};

// One client: connect, send a message of its own, read the same bytes back, close.
coro::task<void> one_client(io::context* ctx, std::uint16_t port, std::uint64_t id, client_results* out) {
  test::connected c = co_await test::connect_loopback(ctx, port, 30s);
  if (c.ec) {
    out->fail(c.ec);
    co_return;
  }
  std::array<std::byte, message> msg;
  test::fill_pattern(id, 0, msg);
  const io::io_result w = co_await c.s.send_all(msg, 30s);
  if (w.ec) {
    out->fail(w.ec);
    co_return;
  }
  std::array<std::byte, message> back{};
  const io::io_result r = co_await test::recv_exact(&c.s, back, 30s);
  if (r.ec || r.bytes != message || back != msg) {
    out->fail(r.ec);
    co_return;
  }
  ++out->ok;
}

coro::task<void> all_clients(io::context* ctx, std::uint16_t port, client_results* out) {
  coro::scope sc;
  for (std::size_t i = 0; i < connections; ++i) sc.spawn(one_client(ctx, port, i, out));
  co_await sc.join();
}

struct server_results {
  std::size_t accepted = 0;
  std::size_t echo_errors = 0;
  std::error_code first_error;
  std::error_code accept_end;
};

coro::task<void> serve_one(io::socket s, server_results* out) {
  std::error_code ec;
  auto echoing = test::echo_until_eof(std::move(s), 30s, &ec);  // a named task: see style.md on GCC 12
  co_await std::move(echoing);
  if (ec) {
    if (!out->first_error) out->first_error = ec;
    ++out->echo_errors;
  }
}

coro::task<void> accept_loop(io::acceptor* acc, coro::scope* conns, server_results* out) {
  while (out->accepted < 2 * connections) {  // bound; normally ended by acc->cancel()
    io::accepted a = co_await acc->accept();
    if (a.ec) {
      out->accept_end = a.ec;
      break;
    }
    ++out->accepted;
    conns->spawn(serve_one(std::move(a.peer), out));
  }
}

struct one_context_result {
  std::error_code setup;
  client_results clients;
  server_results server;
};

coro::task<void> thousand_on_one_context(io::context* ctx, one_context_result* out) {
  io::listen_socket l = test::listen_loopback(out->setup, 4096);
  if (out->setup) co_return;
  io::acceptor acc = test::make_acceptor(*ctx, l, out->setup);
  if (out->setup) co_return;
  coro::scope server;
  server.spawn(accept_loop(&acc, &server, &out->server));
  co_await all_clients(ctx, test::port_of(l), &out->clients);
  acc.cancel();
  co_await server.join();
}

bool enough_descriptors() {
  const std::uint64_t limit = cproxy::raise_open_file_limit();
  BOOST_TEST_MESSAGE("RLIMIT_NOFILE is now " << limit);
  return limit >= 2 * connections + 200;
}

// The worker_pool's side: counters only (no assertions on pool threads).
struct pool_counters {
  std::atomic<std::size_t> handled{0};
  std::atomic<std::size_t> errors{0};
};

coro::task<void> pool_echo(io::socket s, pool_counters* c) {
  std::error_code ec;
  auto echoing = test::echo_until_eof(std::move(s), 30s, &ec);  // a named task: see style.md on GCC 12
  co_await std::move(echoing);
  if (ec) c->errors.fetch_add(1);
  c->handled.fetch_add(1);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(many_connections)

CPROXY_IO_TEST_CASE(thousand_concurrent_echoes_on_one_context) {
  const bool descriptors = enough_descriptors();
  BOOST_REQUIRE_MESSAGE(descriptors, "RLIMIT_NOFILE too low for " << connections << " connections");
  auto ctx = io::make_context(Backend::kind);
  one_context_result res;
  test::run(*ctx, thousand_on_one_context(ctx.get(), &res), 120s);
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(res.clients.ok == connections,
             res.clients.failed << " clients failed; first: " << res.clients.first_error.message());
  BOOST_TEST(res.server.accepted == connections);
  BOOST_TEST(res.server.echo_errors == 0u, "first: " << res.server.first_error.message());
  BOOST_TEST(io::is_cancelled(res.server.accept_end),
             "accept after cancel(): " << res.server.accept_end.message());
}

CPROXY_IO_TEST_CASE(thousand_concurrent_echoes_through_worker_pool) {
  const bool descriptors = enough_descriptors();
  BOOST_REQUIRE_MESSAGE(descriptors, "RLIMIT_NOFILE too low for " << connections << " connections");
  std::error_code ec;
  io::listen_socket l = test::listen_loopback(ec, 4096);
  BOOST_REQUIRE_MESSAGE(!ec, ec.message());
  pool_counters counters;
  io::worker_pool pool(l, {Backend::kind, 2},
                       [&counters](io::socket s, io::worker&) { return pool_echo(std::move(s), &counters); });
  BOOST_REQUIRE(pool.size() == 2u);

  auto ctx = io::make_context(Backend::kind);
  client_results clients;
  test::run(*ctx, all_clients(ctx.get(), test::port_of(l), &clients), 120s);
  // Every client has its echo, so every handler has seen EOF or is about to: give them time to end.
  const bool all_handled = test::poll_until([&] { return counters.handled.load() >= connections; }, 30s);
  pool.stop(1s);
  BOOST_TEST(clients.ok == connections,
             clients.failed << " clients failed; first: " << clients.first_error.message());
  BOOST_TEST(all_handled);
  BOOST_TEST(counters.handled.load() == connections);
  BOOST_TEST(counters.errors.load() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
