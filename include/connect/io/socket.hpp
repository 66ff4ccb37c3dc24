// socket: a TCP connection driven by a context. Move-only; closes on destruction. At most one read and
// one write may be in flight at once (a second concurrent send could reorder bytes). The object must
// outlive its operations in flight: cancel() them and let them complete before destroying it.
#pragma once

#include <memory>
#include <span>
#include <system_error>

#include "connect/coro/task.hpp"
#include "connect/io/awaitable.hpp"
#include "connect/io/backend.hpp"

namespace cproxy::io {

struct received {
  std::error_code ec;
  buffer_lease data;  // empty with no error: the peer closed (EOF)
};

class socket {
 public:
  socket() noexcept = default;
  explicit socket(std::unique_ptr<socket_impl> impl) noexcept : impl_(std::move(impl)) {}

  // A new, unconnected socket for `family` (AF_INET, AF_INET6).
  static socket open(context& ctx, int family, std::error_code& ec) {
    return socket(ctx.open_socket(family, ec));
  }

  bool is_open() const noexcept { return impl_ != nullptr; }
  // The address of the other end (the client, for an accepted socket).
  endpoint remote_endpoint() const;
  // True when the connection is open and has nothing waiting to be read: an idle pooled connection
  // that may be reused (EOF or stray bytes mean it cannot). It never waits for data.
  coro::task<bool> quiet() { return impl_->quiet(); }
  native_handle_type native_handle() const noexcept { return impl_->native_handle(); }
  socket_impl& impl() noexcept { return *impl_; }

  // Bytes into `buf`; 0 means EOF.
  auto recv(std::span<std::byte> buf, duration timeout = {}) {
    return op_awaitable<socket_impl, recv_op>{impl_.get(), make<recv_op>(buf, timeout)};
  }
  // Bytes into a buffer the backend picks when data arrives.
  auto recv_any(duration timeout = {}) {
    struct awaitable : op_awaitable<socket_impl, recv_any_op> {
      received await_resume() {
        received r{op.res < 0 ? op.error() : std::error_code{}, std::move(op.lease)};
        return r;
      }
    };
    awaitable a{{impl_.get(), {}}};
    a.op.timeout = timeout;
    return a;
  }
  // May send fewer bytes than given; see send_all.
  auto send(std::span<const std::byte> buf, duration timeout = {}) {
    return op_awaitable<socket_impl, send_op>{impl_.get(), make<send_op>(buf, timeout)};
  }
  auto writev(std::span<const const_buffer> bufs, duration timeout = {}) {
    return op_awaitable<socket_impl, writev_op>{impl_.get(), make<writev_op>(bufs, timeout)};
  }
  auto connect(const endpoint& peer, duration timeout = {}) {
    connect_op op;
    op.peer = peer;
    op.timeout = timeout;
    return op_awaitable<socket_impl, connect_op>{impl_.get(), std::move(op)};
  }

  // Loops over partial writes until every byte is sent or an error occurs.
  coro::task<io_result> send_all(std::span<const std::byte> buf, duration timeout = {});
  coro::task<io_result> writev_all(std::span<const const_buffer> bufs, duration timeout = {});
  // send_all, then the end of this side's sending: the peer reads EOF right after the bytes. What the
  // socket buffer takes goes at once, without the backend (try_send). The socket still receives.
  coro::task<io_result> send_last(std::span<const std::byte> buf, duration timeout = {});
  // Sends what the socket buffer takes now, without waiting and without the backend: the bytes sent
  // (0 when it is full). Never while a send is in flight: the bytes could overtake it.
  std::size_t try_send(std::span<const std::byte> buf, std::error_code& ec) noexcept;
  // See socket_impl::splice_to.
  coro::task<io_result> splice_to(socket& to, std::size_t max, duration idle = {}) {
    return impl_->splice_to(*to.impl_, max, idle);
  }

  void cancel() noexcept {
    if (impl_) impl_->cancel();
  }
  void shutdown_send() noexcept {
    if (impl_) impl_->shutdown_send();
  }
  void close() noexcept { impl_.reset(); }

 private:
  template <class Op, class Buf>
  static Op make(Buf buf, duration timeout) {
    Op op;
    if constexpr (requires { op.buffers; }) {
      op.buffers = buf;
    } else {
      op.buffer = buf;
    }
    op.timeout = timeout;
    return op;
  }

  std::unique_ptr<socket_impl> impl_;
};

}  // namespace cproxy::io
