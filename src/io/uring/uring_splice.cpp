// uring_socket::splice_to: socket -> pipe -> socket with IORING_OP_SPLICE, so relayed bytes never
// enter user space. io_uring runs splice on io-wq workers and a non-blocking socket answers EAGAIN
// there, so each side first polls for readiness. EINVAL (a kernel or socket type that cannot splice)
// turns splice off for the context and the bytes are copied instead.
#include <fcntl.h>
#include <poll.h>

#include "../copy_relay.hpp"
#include "connect/io/awaitable.hpp"
#include "uring_objects.hpp"

namespace cproxy::io::uring {
namespace {

// One SQE, awaited. The operation lives in the awaiting frame until its completion arrives.
struct splice_op : operation {
  int in = -1;
  int out = -1;
  unsigned len = 0;
  int res_or_error() const noexcept { return res; }
};
struct poll_op : operation {
  int fd = -1;
  unsigned events = 0;
};

struct splice_awaitable {
  uring_context* ctx;
  splice_op op;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    op.waiter = h;
    ctx->start(op, duration{}, [&](io_uring_sqe* sqe) {
      io_uring_prep_splice(sqe, op.in, -1, op.out, -1, op.len, SPLICE_F_MOVE);
    });
  }
  int await_resume() const noexcept { return op.res; }
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
coro::task<int> splice_once(uring_context* ctx, int in, int out, unsigned len, unsigned wait_events,
                            int wait_fd, duration idle) {
  for (int attempt = 0;; ++attempt) {
    splice_awaitable s{ctx, {}};
    s.op.in = in;
    s.op.out = out;
    s.op.len = len;
    const int n = co_await s;
    if (n != -EAGAIN) co_return n;
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
