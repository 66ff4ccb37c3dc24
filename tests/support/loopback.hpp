// Loopback plumbing for io tests: a listener on 127.0.0.1 with an ephemeral port, an acceptor over it,
// and coroutines that connect a client or build a connected pair inside one context.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <utility>

#include "connect/coro/task.hpp"
#include "connect/io/acceptor.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/endpoint.hpp"
#include "connect/io/listen_socket.hpp"
#include "connect/io/socket.hpp"

namespace cproxy::test {

inline constexpr io::duration connect_timeout = std::chrono::seconds(10);

// 127.0.0.1:0: the kernel picks a free port; read it with local_endpoint().port().
inline io::listen_socket listen_loopback(std::error_code& ec, int backlog = 1024) {
  return io::listen_socket::bind(io::endpoint::loopback_v4(0), backlog, ec);
}

inline std::uint16_t port_of(const io::listen_socket& l) {
  return l.local_endpoint().port();
}

// An acceptor on `ctx` over a dup of `l`, as each worker of a pool has.
inline io::acceptor make_acceptor(io::context& ctx, const io::listen_socket& l, std::error_code& ec) {
  const io::native_handle_type fd = l.duplicate(ec);
  if (ec) return {};
  return io::acceptor(ctx.adopt_acceptor(fd));
}

struct connected {
  std::error_code ec;
  io::socket s;
};

inline coro::task<connected> connect_to(io::context* ctx, io::endpoint peer, io::duration timeout) {
  connected out;
  out.s = io::socket::open(*ctx, peer.family(), out.ec);
  if (out.ec) co_return std::move(out);
  out.ec = co_await out.s.connect(peer, timeout);
  co_return std::move(out);
}

inline coro::task<connected> connect_loopback(io::context* ctx, std::uint16_t port,
                                              io::duration timeout = connect_timeout) {
  return connect_to(ctx, io::endpoint::loopback_v4(port), timeout);
}

struct socket_pair {
  std::error_code ec;  // the first failure while building the pair
  io::socket client;
  io::socket server;
};

// Both ends of one loopback TCP connection, driven by `ctx`. The client connects first (the kernel
// completes the handshake from the backlog), then the server side is accepted.
inline coro::task<socket_pair> connected_pair(io::context* ctx) {
  socket_pair p;
  io::listen_socket l = listen_loopback(p.ec);
  if (p.ec) co_return std::move(p);
  io::acceptor acc = make_acceptor(*ctx, l, p.ec);
  if (p.ec) co_return std::move(p);
  auto connecting = connect_loopback(ctx, port_of(l));
  connected c = co_await std::move(connecting);
  if (c.ec) {
    p.ec = c.ec;
    co_return std::move(p);
  }
  p.client = std::move(c.s);
  io::accepted a = co_await acc.accept();
  if (a.ec) {
    p.ec = a.ec;
    co_return std::move(p);
  }
  p.server = std::move(a.peer);
  co_return std::move(p);
}

// Reads until `out` is full, EOF (bytes < out.size(), no error) or an error.
inline coro::task<io::io_result> recv_exact(io::socket* s, std::span<std::byte> out, io::duration timeout) {
  std::size_t got = 0;
  while (got < out.size()) {
    const io::io_result r = co_await s->recv(out.subspan(got), timeout);
    if (r.ec) co_return io::io_result{r.ec, got};
    if (r.bytes == 0) break;
    got += r.bytes;
  }
  co_return io::io_result{{}, got};
}

// Echoes what it reads until EOF, then shuts down its sending side. The first error lands in *err.
inline coro::task<void> echo_until_eof(io::socket s, io::duration timeout, std::error_code* err) {
  std::array<std::byte, 16384> buf;
  for (;;) {
    const io::io_result r = co_await s.recv(buf, timeout);
    if (r.ec) {
      *err = r.ec;
      break;
    }
    if (r.bytes == 0) break;
    const io::io_result w = co_await s.send_all(std::span<const std::byte>(buf.data(), r.bytes), timeout);
    if (w.ec) {
      *err = w.ec;
      break;
    }
  }
  s.shutdown_send();
}

// Shrinks the kernel buffers of a socket so that a writer fills them with little data.
inline void shrink_buffers(io::native_handle_type fd, int bytes) {
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

}  // namespace cproxy::test
