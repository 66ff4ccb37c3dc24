// uring_socket: TCP socket operations as io_uring SQEs.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "asan.hpp"
#include "uring_objects.hpp"

namespace cproxy::io::uring {
namespace {

static_assert(sizeof(const_buffer) == sizeof(iovec) &&
                  offsetof(const_buffer, size) == offsetof(iovec, iov_len),
              "const_buffer must have the layout of iovec");

// Where an operation's scratch keeps what a completion hook needs.
template <class T>
T*& scratch_slot(operation& op) {
  static_assert(sizeof(T*) <= 16);
  return *reinterpret_cast<T**>(op.scratch);
}

bool finish_recv(operation& base) {
  auto& op = static_cast<recv_op&>(base);
  asan::unpoison(op.buffer.data(), op.buffer.size());
  if (op.res > 0)
    scratch_slot<uring_context>(op)->count().received_bytes += static_cast<std::uint64_t>(op.res);
  return true;
}
bool unpoison_send(operation& base) {
  auto& op = static_cast<send_op&>(base);
  asan::unpoison(op.buffer.data(), op.buffer.size());
  return true;
}

// Turns the buffer the kernel picked into a lease, or falls back to a heap buffer when the provided
// ring ran dry (ENOBUFS is not fatal: re-issue the read into memory of our own).
bool finish_recv_any(operation& base) {
  auto& op = static_cast<recv_any_op&>(base);
  uring_context* ctx = scratch_slot<uring_context>(op);
  std::byte*& heap = *reinterpret_cast<std::byte**>(op.scratch + sizeof(void*));
  const int fd = *reinterpret_cast<int*>(op.scratch + 2 * sizeof(void*));
  if (heap) {
    asan::unpoison(heap, uring_context::buffer_size);
    if (op.res > 0) {
      op.lease = buffer_lease(ctx, uring_context::heap_lease, heap, static_cast<std::size_t>(op.res));
      ++ctx->count().pooled_buffer_recvs;
      ctx->count().received_bytes += static_cast<std::uint64_t>(op.res);
    } else {
      ctx->release_lease(uring_context::heap_lease, heap);
    }
    heap = nullptr;
    return true;
  }
  if (op.flags & IORING_CQE_F_BUFFER) {
    const auto id = static_cast<std::uint16_t>(op.flags >> IORING_CQE_BUFFER_SHIFT);
    std::byte* data = ctx->buffers()->buffer(id);
    if (op.res > 0) {
      asan::unpoison(data, static_cast<std::size_t>(op.res));
      op.lease = buffer_lease(ctx, id, data, static_cast<std::size_t>(op.res));
      ++ctx->count().provided_buffer_recvs;
      ctx->count().received_bytes += static_cast<std::uint64_t>(op.res);
    } else {
      ctx->buffers()->give_back(id);
    }
    return true;
  }
  if (op.res == -ENOBUFS && !ctx->closing()) {
    heap = ctx->take_heap_buffer();
    asan::poison(heap, uring_context::buffer_size);
    std::byte* target = heap;
    ctx->start(op, op.timeout, [&](io_uring_sqe* sqe) {
      io_uring_prep_recv(sqe, fd, target, uring_context::buffer_size, 0);
    });
    return false;
  }
  return true;
}

// A one-byte peek that never waits: with MSG_DONTWAIT io_uring answers -EAGAIN ("nothing to read")
// instead of arming a poll. It goes out with the loop turn's other SQEs: no syscall of its own. The
// 1 ms deadline only bounds a kernel that would arm a poll anyway: nothing arrived in it, so quiet.
struct peek_awaitable {
  uring_context* ctx;
  int fd;
  std::byte* probe;
  operation op;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    op.waiter = h;
    ctx->start(op, duration{1},
               [&](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, fd, probe, 1, MSG_PEEK | MSG_DONTWAIT); });
  }
  // A timed-out peek is quiet only if the cancel won: a recv that completed in the same turn as the
  // deadline still reports what it saw (bytes, or 0 for EOF).
  bool await_resume() const noexcept { return op.res == -EAGAIN || (op.timed_out && op.res == -ECANCELED); }
};

}  // namespace

// A synchronous recv(MSG_PEEK) per reused pooled connection was one syscall per keep-alive request, and
// about 7% of the proxy's CPU under load (syscall entry and exit, not the peek, were most of it).
coro::task<bool> uring_socket::quiet() {
  std::byte probe[1];
  peek_awaitable peek{ctx_, fd_, probe, {}};
  const bool nothing_waiting = co_await peek;
  co_return nothing_waiting;
}

uring_socket::~uring_socket() {
  ctx_->close_fd(fd_);
}

void uring_socket::start(recv_op& op) {
  asan::poison(op.buffer.data(), op.buffer.size());
  scratch_slot<uring_context>(op) = ctx_;
  op.on_complete = &finish_recv;
  ctx_->start(op, op.timeout, [&](io_uring_sqe* sqe) {
    io_uring_prep_recv(sqe, fd_, op.buffer.data(), op.buffer.size(), 0);
  });
}

void uring_socket::start(recv_any_op& op) {
  scratch_slot<uring_context>(op) = ctx_;
  *reinterpret_cast<std::byte**>(op.scratch + sizeof(void*)) = nullptr;
  *reinterpret_cast<int*>(op.scratch + 2 * sizeof(void*)) = fd_;
  op.on_complete = &finish_recv_any;
  buffer_ring* ring = ctx_->buffers();
  if (!ring) {
    std::byte* heap = ctx_->take_heap_buffer();
    *reinterpret_cast<std::byte**>(op.scratch + sizeof(void*)) = heap;
    asan::poison(heap, uring_context::buffer_size);
    ctx_->start(op, op.timeout, [&](io_uring_sqe* sqe) {
      io_uring_prep_recv(sqe, fd_, heap, uring_context::buffer_size, 0);
    });
    return;
  }
  ctx_->start(op, op.timeout, [&](io_uring_sqe* sqe) {
    io_uring_prep_recv(sqe, fd_, nullptr, ring->buffer_size(), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ring->group();
  });
}

void uring_socket::start(send_op& op) {
  asan::poison(op.buffer.data(), op.buffer.size());
  op.on_complete = &unpoison_send;
  ctx_->start(op, op.timeout, [&](io_uring_sqe* sqe) {
    io_uring_prep_send(sqe, fd_, op.buffer.data(), op.buffer.size(), MSG_NOSIGNAL);
  });
}

void uring_socket::start(writev_op& op) {
  auto* msg = new (op.scratch) msghdr{};
  msg->msg_iov = const_cast<iovec*>(reinterpret_cast<const iovec*>(op.buffers.data()));
  msg->msg_iovlen = op.buffers.size();
  ctx_->start(op, op.timeout, [&](io_uring_sqe* sqe) { io_uring_prep_sendmsg(sqe, fd_, msg, MSG_NOSIGNAL); });
}

void uring_socket::start(connect_op& op) {
  ctx_->start(op, op.timeout,
              [&](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, fd_, op.peer.data(), op.peer.size()); });
}

void uring_socket::cancel() noexcept {
  io_uring_sqe* sqe = ctx_->get_sqe();
  io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, 0);
}

void uring_socket::shutdown_send() noexcept {
  ::shutdown(fd_, SHUT_WR);
}

}  // namespace cproxy::io::uring
