// uring_socket::splice_to: socket -> pipe -> socket with splice(2), so relayed bytes never enter user
// space. The splice itself is a synchronous, non-blocking call from the loop, not IORING_OP_SPLICE: io_uring
// runs every splice on an io-wq worker thread, a wake-up and two context switches per call, and the
// synchronous call took 7-9% less of the proxy's CPU per MB at the same rate (docs/performance.md). Both
// sockets are non-blocking and SPLICE_F_NONBLOCK covers the pipe, so a call never waits: it answers
// EAGAIN, and the side it waits for is polled through the ring. EINVAL (a kernel or socket type that
// cannot splice) turns splice off for the context and the bytes are copied instead.
#include <fcntl.h>
#include <poll.h>

#include "../copy_relay.hpp"
#include "connect/io/awaitable.hpp"
#include "uring_objects.hpp"

namespace cproxy::io::uring {
namespace {

struct poll_op : operation {
  int fd = -1;
  unsigned events = 0;
};

struct poll_awaitable {
  uring_context* ctx;
  poll_op op;
  duration idle;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    op.waiter = h;
    ctx->start(op, idle, [&](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, op.fd, op.events); });
  }
  int await_resume() const noexcept { return op.timed_out && op.res == -ECANCELED ? -ETIMEDOUT : op.res; }
};

// The socket side waits for readiness under `idle`; the splice itself never blocks (EAGAIN instead).
// Returns the bytes moved, 0 at the end of the input, or a negated errno.
coro::task<int> splice_once(uring_context* ctx, int in, int out, unsigned len, unsigned wait_events,
                            int wait_fd, duration idle) {
  for (;;) {
    const ssize_t n = ::splice(in, nullptr, out, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n >= 0) co_return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) co_return -errno;
    poll_awaitable p{ctx, {}, idle};
    p.op.fd = wait_fd;
    p.op.events = wait_events;
    const int ready = co_await p;
    if (ready < 0) co_return ready;
  }
}

}  // namespace

coro::task<io_result> uring_socket::splice_to(socket_impl& to, std::size_t max, duration idle) {
  auto* peer = dynamic_cast<uring_socket*>(&to);
  if (ctx_->caps().splice && peer && max > 0) {
    const io_result r = co_await splice_through_pipe(peer->fd_, max, idle);
    if (r.ec != std::errc::invalid_argument || r.bytes != 0) {
      ++ctx_->count().splice_calls;
      ctx_->count().spliced_bytes += r.bytes;
      co_return r;
    }
    ctx_->disable_splice();  // this kernel or socket cannot splice: copy from now on
  }
  const io_result copied = co_await detail::copy_some(this, &to, max, idle);
  ctx_->count().copy_fallback_bytes += copied.bytes;
  co_return copied;
}

coro::task<io_result> uring_socket::splice_through_pipe(int to_fd, std::size_t max, duration idle) {
  std::optional<pipe_pair> pipe = ctx_->pipes().take();
  if (!pipe) co_return io_result{std::error_code(errno, std::generic_category()), 0};
  constexpr std::size_t chunk = 1 << 20;
  const auto len = static_cast<unsigned>(max < chunk ? max : chunk);

  const int in = co_await splice_once(ctx_, fd_, pipe->write_end, len, POLLIN, fd_, idle);
  if (in <= 0) {
    ctx_->pipes().give_back(*pipe);  // nothing entered the pipe
    co_return in == 0 ? io_result{{}, 0} : io_result{error_from_res(in), 0};
  }
  std::size_t left = static_cast<std::size_t>(in);
  while (left > 0) {
    const int out =
        co_await splice_once(ctx_, pipe->read_end, to_fd, static_cast<unsigned>(left), POLLOUT, to_fd, idle);
    if (out <= 0) {
      pipe_pool::close(*pipe);  // may still hold bytes: never reuse it
      const std::error_code ec = out < 0 ? error_from_res(out) : std::make_error_code(std::errc::broken_pipe);
      co_return io_result{ec, static_cast<std::size_t>(in) - left};
    }
    left -= static_cast<std::size_t>(out);
  }
  ctx_->pipes().give_back(*pipe);
  co_return io_result{{}, static_cast<std::size_t>(in)};
}

}  // namespace cproxy::io::uring
