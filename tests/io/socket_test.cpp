// socket basics on every backend: accept + connect + echo on loopback (IPv4 and IPv6); connect refused
// and timed out; send to a closed peer; socket_stream; a last write that ends the sending side only. Partial
// I/O and leased reads have their own files.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "connect/coro/scope.hpp"
#include "connect/io/stream.hpp"
#include "support/backends.hpp"
#include "support/bytes.hpp"
#include "support/loopback.hpp"
#include "support/posix_client.hpp"
#include "support/run.hpp"

using namespace std::chrono_literals;
namespace io = cproxy::io;
namespace coro = cproxy::coro;
namespace test = cproxy::test;

namespace {

constexpr std::size_t ping_rounds = 100;
constexpr std::size_t ping_size = 37;
constexpr std::size_t bulk_bytes = 1 << 20;
constexpr std::uint64_t bulk_seed = 7;

struct echo_result {
  std::error_code setup, connect, accept, server, client_send, client_recv;
  std::size_t pings_ok = 0;
  std::size_t bulk_sent = 0;
  std::vector<std::byte> bulk_back;
  bool eof = false;
};

coro::task<void> accept_and_echo(io::acceptor* acc, echo_result* out) {
  io::accepted a = co_await acc->accept();
  if (a.ec) {
    out->accept = a.ec;
    co_return;
  }
  auto echoing = test::echo_until_eof(std::move(a.peer), 10s, &out->server);
  co_await std::move(echoing);
}

coro::task<void> send_bulk_then_eof(io::socket* c, const std::vector<std::byte>* bulk, echo_result* out) {
  const io::io_result w = co_await c->send_all(*bulk, 10s);
  out->client_send = w.ec;
  out->bulk_sent = w.bytes;
  c->shutdown_send();
}

// `ping_rounds` request/response rounds, then 1 MiB written while the echo is read back until EOF.
coro::task<void> echo_client(io::socket* c, echo_result* out) {
  for (std::size_t i = 0; i < ping_rounds; ++i) {
    std::array<std::byte, ping_size> ping;
    test::fill_pattern(i, 0, ping);
    const io::io_result w = co_await c->send_all(ping, 10s);
    if (w.ec) {
      out->client_send = w.ec;
      co_return;
    }
    std::array<std::byte, ping_size> pong{};
    const io::io_result r = co_await test::recv_exact(c, pong, 10s);
    if (r.ec || r.bytes != pong.size()) {
      out->client_recv = r.ec;
      co_return;
    }
    if (pong == ping) ++out->pings_ok;
  }

  std::vector<std::byte> bulk(bulk_bytes);
  test::fill_pattern(bulk_seed, 0, bulk);
  coro::scope writer;  // one read and one write in flight on the socket at once
  writer.spawn(send_bulk_then_eof(c, &bulk, out));
  std::array<std::byte, 16384> buf;
  while (out->bulk_back.size() <= bulk_bytes) {  // bounded: more than we sent is a failure
    const io::io_result r = co_await c->recv(buf, 10s);
    if (r.ec) {
      out->client_recv = r.ec;
      break;
    }
    if (r.bytes == 0) {
      out->eof = true;
      break;
    }
    out->bulk_back.insert(out->bulk_back.end(), buf.begin(),
                          buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
  }
  co_await writer.join();
}

coro::task<void> echo_round_trip(io::context* ctx, echo_result* out) {
  io::listen_socket l = test::listen_loopback(out->setup);
  if (out->setup) co_return;
  io::acceptor acc = test::make_acceptor(*ctx, l, out->setup);
  if (out->setup) co_return;
  coro::scope server;
  server.spawn(accept_and_echo(&acc, out));
  {
    test::connected c = co_await test::connect_loopback(ctx, test::port_of(l));
    out->connect = c.ec;
    if (c.ec) {
      acc.cancel();  // the server is still waiting for us
    } else {
      co_await echo_client(&c.s, out);
    }
  }
  co_await server.join();
}

coro::task<void> connect_refused(io::context* ctx, std::uint16_t port, std::error_code* out) {
  std::error_code ec;
  io::socket s = io::socket::open(*ctx, AF_INET, ec);
  if (ec) {
    *out = ec;
    co_return;
  }
  const io::endpoint closed = io::endpoint::loopback_v4(port);
  *out = co_await s.connect(closed, 5s);
}

struct v6_result {
  std::error_code setup, connect, accept, io;
  bool echoed = false;
};

// The same round trip over [::1]: sockaddr_in6 has another size, which backends must pass through.
coro::task<void> echo_over_ipv6(io::context* ctx, const io::listen_socket* l, v6_result* out) {
  io::acceptor acc = test::make_acceptor(*ctx, *l, out->setup);
  if (out->setup) co_return;
  test::connected c = co_await test::connect_to(ctx, io::endpoint::loopback_v6(test::port_of(*l)), 5s);
  out->connect = c.ec;
  if (c.ec) co_return;
  io::accepted a = co_await acc.accept();
  out->accept = a.ec;
  if (a.ec) co_return;
  std::array<std::byte, 300> msg;
  test::fill_pattern(6, 0, msg);
  const io::io_result w = co_await c.s.send_all(msg, 5s);
  std::array<std::byte, 300> got{};
  const io::io_result r = co_await test::recv_exact(&a.peer, got, 5s);
  out->io = w.ec ? w.ec : r.ec;
  out->echoed = r.bytes == got.size() && got == msg;
}

struct timed_connect {
  std::error_code ec;
  std::chrono::steady_clock::duration took{};
};

coro::task<void> connect_with_timeout(io::context* ctx, std::uint16_t port, io::duration timeout,
                                      timed_connect* out) {
  const auto start = std::chrono::steady_clock::now();
  test::connected c = co_await test::connect_loopback(ctx, port, timeout);
  out->took = std::chrono::steady_clock::now() - start;
  out->ec = c.ec;
}

struct closed_peer_result {
  std::error_code setup, send;
  std::size_t sends = 0;
};

// The peer closes with unread bytes, so the kernel answers with RST: sends must fail with an error
// (ECONNRESET, then EPIPE), neither succeed for ever nor kill the process.
coro::task<void> send_to_closed_peer(io::context* ctx, closed_peer_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  std::vector<std::byte> chunk(64u << 10, std::byte{1});
  const io::io_result first = co_await p.client.send_all(chunk, 5s);
  if (first.ec) {
    out->setup = first.ec;
    co_return;
  }
  p.server.close();
  for (; out->sends < 1000; ++out->sends) {  // bound: 64 MB
    const io::io_result r = co_await p.client.send(chunk, 5s);
    if (r.ec) {
      out->send = r.ec;
      break;
    }
  }
}

struct stream_result {
  std::error_code setup, write, read, back;
  std::vector<std::byte> at_server;
  std::size_t read_back = 0;
  bool plain = false;
};

// socket_stream is the byte stream connection code uses; over a plain socket it passes bytes as they are.
coro::task<void> stream_round(io::context* ctx, stream_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  io::socket_stream st(std::move(p.client));
  out->plain = st.plain_socket() != nullptr;
  std::vector<std::byte> data(3000);
  test::fill_pattern(5, 0, data);
  const io::io_result w1 = co_await st.write_all(std::span<const std::byte>(data.data(), 1000), 5s);
  const std::array<io::const_buffer, 2> rest{{{data.data() + 1000, 1500}, {data.data() + 2500, 500}}};
  const io::io_result w2 = co_await st.write_all(std::span<const io::const_buffer>(rest), 5s);
  out->write = w1.ec ? w1.ec : w2.ec;
  st.shutdown_send();
  std::array<std::byte, 1024> buf;
  for (int i = 0; i < 100; ++i) {
    const io::io_result r = co_await p.server.recv(buf, 5s);
    if (r.ec || r.bytes == 0) {
      out->read = r.ec;
      break;
    }
    out->at_server.insert(out->at_server.end(), buf.begin(),
                          buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
  }
  const io::io_result b = co_await p.server.send_all(std::span<const std::byte>(data.data(), 10), 5s);
  out->back = b.ec;
  const io::io_result r = co_await st.read_some(buf, 5s);
  if (r.ec) out->back = r.ec;
  out->read_back = r.bytes;
}

struct nagle_result {
  std::error_code ec;
  int client_nodelay = -1;
  int server_nodelay = -1;
};

int nodelay_of(io::native_handle_type fd) {
  int value = -1;
  socklen_t len = sizeof value;
  ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len);
  return value;
}

coro::task<void> nagle_of_both_ends(io::context* ctx, nagle_result* out) {
  auto pairing = test::connected_pair(ctx);
  test::socket_pair p = co_await std::move(pairing);
  out->ec = p.ec;
  if (p.ec) co_return;
  out->client_nodelay = nodelay_of(p.client.native_handle());
  out->server_nodelay = nodelay_of(p.server.native_handle());
}

struct last_write_result {
  std::error_code setup, write, read, back;
  std::size_t written = 0;
  std::vector<std::byte> at_client;
  bool eof = false;
  std::string back_at_server;
};

coro::task<void> read_to_eof(io::socket* s, last_write_result* out) {
  std::array<std::byte, 16 * 1024> chunk;
  for (;;) {
    const io::io_result r = co_await s->recv(chunk, 10s);
    if (r.ec) {
      out->read = r.ec;
      co_return;
    }
    if (r.bytes == 0) break;
    out->at_client.insert(out->at_client.end(), chunk.begin(), chunk.begin() + static_cast<long>(r.bytes));
  }
  out->eof = true;
}

// 4 MiB, more than the socket buffers hold, so the last write goes out in parts while the client reads:
// the end of sending must wait for the last part. Then the client answers on the same connection.
coro::task<void> last_write_then_answer(io::context* ctx, last_write_result* out) {
  test::socket_pair p = co_await test::connected_pair(ctx);
  if (p.ec) {
    out->setup = p.ec;
    co_return;
  }
  std::vector<std::byte> payload(4u << 20);
  test::fill_pattern(11, 0, payload);
  io::socket_stream server(std::move(p.server));
  coro::scope sc;
  sc.spawn(read_to_eof(&p.client, out));
  const io::io_result w = co_await server.write_last(payload, 10s);
  out->write = w.ec;
  out->written = w.bytes;
  co_await sc.join();
  static constexpr std::string_view answer = "still listening";
  const io::io_result sent = co_await p.client.send_all(std::as_bytes(std::span(answer)), 10s);
  if (sent.ec) {
    out->back = sent.ec;
    co_return;
  }
  std::array<std::byte, answer.size()> got{};
  const io::io_result r = co_await server.read_some(got, 10s);
  if (r.ec) out->back = r.ec;
  out->back_at_server.assign(reinterpret_cast<const char*>(got.data()), r.bytes);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sockets)

CPROXY_IO_TEST_CASE(nagle_is_off_on_connected_and_accepted_sockets) {
  // A proxy forwards small writes at once: Nagle would hold each one back for an acknowledgement.
  auto ctx = io::make_context(Backend::kind);
  nagle_result r;
  test::run(*ctx, nagle_of_both_ends(ctx.get(), &r));
  BOOST_TEST(!r.ec, r.ec.message());
  BOOST_TEST(r.client_nodelay == 1);
  BOOST_TEST(r.server_nodelay == 1);
}

CPROXY_IO_TEST_CASE(echo_round_trip_on_loopback) {
  auto ctx = io::make_context(Backend::kind);
  BOOST_REQUIRE(ctx);
  BOOST_CHECK(ctx->kind() == Backend::kind);
  echo_result r;
  test::run(*ctx, echo_round_trip(ctx.get(), &r));
  BOOST_TEST(!r.setup, "setup: " << r.setup.message());
  BOOST_TEST(!r.connect, "connect: " << r.connect.message());
  BOOST_TEST(!r.accept, "accept: " << r.accept.message());
  BOOST_TEST(!r.server, "server: " << r.server.message());
  BOOST_TEST(!r.client_send, "client send: " << r.client_send.message());
  BOOST_TEST(!r.client_recv, "client recv: " << r.client_recv.message());
  BOOST_TEST(r.pings_ok == ping_rounds);
  BOOST_TEST(r.bulk_sent == bulk_bytes);
  BOOST_TEST(r.eof, "the echo server's shutdown_send must reach the client as EOF");
  BOOST_TEST(r.bulk_back.size() == bulk_bytes);
  BOOST_TEST(test::first_mismatch(bulk_seed, 0, r.bulk_back) == r.bulk_back.size());
}

CPROXY_IO_TEST_CASE(connect_to_closed_port_is_refused) {
  // A socket bound to a loopback port but not listening: a SYN to it is answered with RST. Keeping it
  // bound (rather than closing it) keeps the port from being taken by someone else meanwhile.
  const int reserved = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(reserved >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(reserved, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  socklen_t len = sizeof sa;
  BOOST_REQUIRE(::getsockname(reserved, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  const std::uint16_t port = ntohs(sa.sin_port);

  auto ctx = io::make_context(Backend::kind);
  std::error_code ec;
  test::run(*ctx, connect_refused(ctx.get(), port, &ec));
  ::close(reserved);
  BOOST_TEST((ec == std::errc::connection_refused),
             "got " << ec.message() << " (" << ec.category().name() << ")");
}

CPROXY_IO_TEST_CASE(round_trip_over_ipv6_loopback) {
  std::error_code ec;
  io::listen_socket l = io::listen_socket::bind(io::endpoint::loopback_v6(0), 16, ec);
  if (ec) {
    std::cerr << "*** WARNING: no IPv6 loopback here (" << ec.message() << "): " << __func__
              << " checks nothing\n";
    BOOST_WARN_MESSAGE(false, "no IPv6 loopback: " << ec.message());
    return;
  }
  auto ctx = io::make_context(Backend::kind);
  v6_result res;
  test::run(*ctx, echo_over_ipv6(ctx.get(), &l, &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(!res.connect, "connect: " << res.connect.message());
  BOOST_TEST(!res.accept, "accept: " << res.accept.message());
  BOOST_TEST(!res.io, res.io.message());
  BOOST_TEST(res.echoed);
  BOOST_TEST(l.local_endpoint().family() == AF_INET6);
}

CPROXY_IO_TEST_CASE(connect_times_out_when_the_backlog_is_full) {
  // Backlog 0 leaves room for one connection in the accept queue; SYNs after it are dropped, so a
  // further connect gets no answer and must end with timed_out.
  std::error_code ec;
  io::listen_socket l = io::listen_socket::bind(io::endpoint::loopback_v4(0), 0, ec);
  BOOST_REQUIRE_MESSAGE(!ec, ec.message());
  test::blocking_client first = test::blocking_client::connect(test::port_of(l), 2000ms, ec);
  BOOST_REQUIRE_MESSAGE(!ec, "filling the accept queue: " << ec.message());

  auto ctx = io::make_context(Backend::kind);
  timed_connect res;
  test::run(*ctx, connect_with_timeout(ctx.get(), test::port_of(l), 300ms, &res));
  BOOST_TEST(io::is_timeout(res.ec), "got " << res.ec.message());
  BOOST_TEST((res.took >= 300ms));
}

CPROXY_IO_TEST_CASE(send_to_a_closed_peer_fails) {
  auto ctx = io::make_context(Backend::kind);
  closed_peer_result res;
  test::run(*ctx, send_to_closed_peer(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST((res.send == std::errc::connection_reset || res.send == std::errc::broken_pipe),
             "after " << res.sends << " sends: " << res.send.message());
}

CPROXY_IO_TEST_CASE(socket_stream_passes_bytes_through) {
  auto ctx = io::make_context(Backend::kind);
  stream_result res;
  test::run(*ctx, stream_round(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(res.plain);
  BOOST_TEST(!res.write, res.write.message());
  BOOST_TEST(!res.read, res.read.message());
  BOOST_TEST(!res.back, res.back.message());
  BOOST_TEST(res.at_server.size() == 3000u);
  BOOST_TEST(test::matches_pattern(5, 0, res.at_server));
  BOOST_TEST(res.read_back >= 1u);
  BOOST_TEST(res.read_back <= 10u);
}

CPROXY_IO_TEST_CASE(a_last_write_ends_the_sending_side_and_the_socket_still_receives) {
  // write_last: the peer reads every byte, then EOF (a plain write_all leaves it waiting: the read
  // times out); the socket is half-closed, not closed, so what the peer sends still arrives.
  auto ctx = io::make_context(Backend::kind);
  last_write_result res;
  test::run(*ctx, last_write_then_answer(ctx.get(), &res));
  BOOST_TEST(!res.setup, res.setup.message());
  BOOST_TEST(!res.write, res.write.message());
  BOOST_TEST(res.written == (4u << 20));
  BOOST_TEST(!res.read, res.read.message());
  BOOST_TEST(res.eof);
  BOOST_TEST(res.at_client.size() == (4u << 20));
  BOOST_TEST(test::matches_pattern(11, 0, res.at_client));
  BOOST_TEST(!res.back, res.back.message());
  BOOST_TEST(res.back_at_server == "still listening");
}

BOOST_AUTO_TEST_SUITE_END()
