// Implementation of asio_objects.hpp.
#include "asio_objects.hpp"

#include <sys/socket.h>

#include <boost/asio/bind_cancellation_slot.hpp>

#include "../copy_relay.hpp"

namespace cproxy::io::asio_backend {
namespace {

net::ip::tcp protocol_of(native_handle_type fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET6 ? net::ip::tcp::v6() : net::ip::tcp::v4();
}

net::ip::tcp::endpoint to_asio(const endpoint& e) {
  net::ip::tcp::endpoint out;
  std::memcpy(out.data(), e.data(), e.size());
  out.resize(e.size());
  return out;
}

}  // namespace

asio_socket::asio_socket(asio_context* ctx, net::ip::tcp::socket sock)
    : ctx_(ctx), socket_(std::move(sock)), read_(ctx->io()), write_(ctx->io()) {
  ctx_->track(*this);
}

asio_socket::asio_socket(asio_context* ctx, native_handle_type fd)
    : ctx_(ctx), socket_(ctx->io(), protocol_of(fd), fd), read_(ctx->io()), write_(ctx->io()) {
  boost::system::error_code ignored;
  socket_.non_blocking(true, ignored);
  ctx_->track(*this);
}

asio_socket::~asio_socket() {
  ctx_->untrack(*this);
}

native_handle_type asio_socket::native_handle() const noexcept {
  return const_cast<net::ip::tcp::socket&>(socket_).native_handle();
}

// Starts an operation; with a timeout, the timer's expiry cancels that operation alone. `initiate`
// receives the operation's cancellation slot and the handler that completes it.
template <class Op, class Initiate>
void asio_socket::launch(Op& op, deadline& d, Initiate&& initiate) {
  if (ctx_->closing()) {
    ctx_->fail_later(op, -ECANCELED);
    return;
  }
  op.timed_out = false;
  const bool timed = op.timeout.count() > 0;
  op.pending = timed ? 2 : 1;
  initiate(d.signal.slot(), [&op, &d, timed](boost::system::error_code ec, std::size_t n) {
    op.res = to_res(ec, n);
    if (timed) d.timer.cancel();
    asio_context::finish(op);
  });
  if (timed) {
    d.timer.expires_after(op.timeout);
    d.timer.async_wait([&op, &d](boost::system::error_code ec) {
      if (!ec && op.pending == 2) {
        op.timed_out = true;
        d.signal.emit(net::cancellation_type::terminal);
      }
      asio_context::finish(op);
    });
  }
}

void asio_socket::start(recv_op& op) {
  launch(op, read_, [&](net::cancellation_slot slot, auto done) {
    socket_.async_receive(
        net::buffer(op.buffer.data(), op.buffer.size()),
        net::bind_cancellation_slot(
            slot, [ctx = ctx_, d = std::move(done)](boost::system::error_code ec, std::size_t n) mutable {
              if (!ec) ctx->count().received_bytes += n;
              d(ec, n);
            }));
  });
}

void asio_socket::start(send_op& op) {
  launch(op, write_, [&](net::cancellation_slot slot, auto done) {
    socket_.async_send(net::buffer(op.buffer.data(), op.buffer.size()),
                       net::bind_cancellation_slot(slot, std::move(done)));
  });
}

void asio_socket::start(writev_op& op) {
  gather_.clear();
  for (const const_buffer& b : op.buffers) gather_.emplace_back(b.data, b.size);
  launch(op, write_, [&](net::cancellation_slot slot, auto done) {
    socket_.async_send(gather_, net::bind_cancellation_slot(slot, std::move(done)));
  });
}

void asio_socket::start(connect_op& op) {
  const net::ip::tcp::endpoint peer = to_asio(op.peer);
  launch(op, write_, [&](net::cancellation_slot slot, auto done) {
    socket_.async_connect(
        peer, net::bind_cancellation_slot(
                  slot, [d = std::move(done)](boost::system::error_code ec) mutable { d(ec, 0); }));
  });
}

namespace {

// Waits until the socket is readable, then reads into a pooled buffer: a connection waiting for bytes
// holds no buffer, as with io_uring's provided buffers. A spurious wake-up waits again.
template <class Done>
struct read_when_ready {
  asio_context* ctx;
  net::ip::tcp::socket* socket;
  recv_any_op* op;
  net::cancellation_slot slot;
  Done done;

  void operator()(boost::system::error_code ec) {
    if (ec) return done(ec, 0);
    std::byte* buf = ctx->take_buffer();
    const std::size_t n = socket->receive(net::buffer(buf, asio_context::buffer_size), 0, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      ctx->release_lease(0, buf);
      net::cancellation_slot s = slot;
      socket->async_wait(net::socket_base::wait_read, net::bind_cancellation_slot(s, std::move(*this)));
      return;
    }
    if (!ec && n > 0) {
      op->lease = buffer_lease(ctx, 0, buf, n);
      ++ctx->count().pooled_buffer_recvs;
      ctx->count().received_bytes += n;
    } else {
      ctx->release_lease(0, buf);
    }
    done(ec, n);
  }
};

}  // namespace

void asio_socket::start(recv_any_op& op) {
  launch(op, read_, [&](net::cancellation_slot slot, auto done) {
    using handler = read_when_ready<decltype(done)>;
    socket_.async_wait(
        net::socket_base::wait_read,
        net::bind_cancellation_slot(slot, handler{ctx_, &socket_, &op, slot, std::move(done)}));
  });
}

// Asio has no operation that answers at once when nothing is there, so the peek is a plain syscall.
coro::task<bool> asio_socket::quiet() {
  char probe;
  const ssize_t n = ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  co_return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

coro::task<io_result> asio_socket::splice_to(socket_impl& to, std::size_t max, duration idle) {
  const io_result copied = co_await detail::copy_some(this, &to, max, idle);
  ctx_->count().copy_fallback_bytes += copied.bytes;
  co_return copied;
}

void asio_socket::cancel() noexcept {
  boost::system::error_code ignored;
  socket_.cancel(ignored);
  read_.timer.cancel();
  write_.timer.cancel();
}

void asio_socket::shutdown_send() noexcept {
  boost::system::error_code ignored;
  socket_.shutdown(net::socket_base::shutdown_send, ignored);
}

asio_acceptor::asio_acceptor(asio_context* ctx, native_handle_type fd)
    : ctx_(ctx), acceptor_(ctx->io(), protocol_of(fd), fd) {
  ctx_->track(*this);
}

asio_acceptor::~asio_acceptor() {
  ctx_->untrack(*this);
}

void asio_acceptor::start(accept_op& op) {
  if (cancelled_ || ctx_->closing()) {
    ctx_->fail_later(op, -ECANCELED);
    return;
  }
  op.pending = 1;
  acceptor_.async_accept([this, &op](boost::system::error_code ec, net::ip::tcp::socket peer) {
    op.res = to_res(ec, 0);
    if (!ec) {
      boost::system::error_code ignored;
      peer.non_blocking(true, ignored);
      peer.set_option(net::ip::tcp::no_delay(true), ignored);  // see tcp_options.hpp
      op.res = peer.native_handle();
      op.accepted = std::make_unique<asio_socket>(ctx_, std::move(peer));
    }
    asio_context::finish(op);
  });
}

void asio_acceptor::cancel() noexcept {
  cancelled_ = true;
  boost::system::error_code ignored;
  acceptor_.cancel(ignored);
}

asio_timer::asio_timer(asio_context* ctx) : ctx_(ctx), timer_(ctx->io()) {
  ctx_->track(*this);
}
asio_timer::~asio_timer() {
  ctx_->untrack(*this);
}

void asio_timer::start(wait_op& op) {
  if (ctx_->closing()) {
    ctx_->fail_later(op, -ECANCELED);
    return;
  }
  op.pending = 1;
  timer_.expires_after(op.delay);
  timer_.async_wait([&op](boost::system::error_code ec) {
    op.res = ec ? to_res(ec, 0) : -ETIME;
    asio_context::finish(op);
  });
}

void asio_timer::cancel() noexcept {
  timer_.cancel();
}

}  // namespace cproxy::io::asio_backend
