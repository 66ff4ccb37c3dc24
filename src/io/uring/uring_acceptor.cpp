// uring_acceptor: multishot accept (kernel >= 5.19), demoted to one accept per SQE if refused.
#include <sys/socket.h>
#include <unistd.h>

#include "../tcp_options.hpp"
#include "uring_objects.hpp"

namespace cproxy::io::uring {

uring_acceptor::~uring_acceptor() {
  for (const int fd : ready_) ::close(fd);
  ::close(fd_);
}

void uring_acceptor::start(accept_op& op) {
  if (!ready_.empty()) {
    const int fd = ready_.front();
    ready_.pop_front();
    deliver(op, fd);
    ctx_->complete_now(op, fd);
    return;
  }
  if ((cancelled_ || ctx_->closing()) && !armed_) {
    ctx_->complete_now(op, -ECANCELED);
    return;
  }
  waiter_ = &op;  // when cancelled but still armed, the final CQE completes it
  if (!cancelled_) arm();
}

uring_acceptor::uring_acceptor(uring_context* ctx, int fd) noexcept : ctx_(ctx), fd_(fd) {
  // Linux copies TCP_NODELAY from the listening socket to every socket accept() returns: set once here
  // instead of one setsockopt per connection (whoever made the listening socket).
  detail::disable_nagle(fd_);
}

void uring_acceptor::deliver(accept_op& op, int fd) {
  op.accepted = ctx_->adopt_socket(fd);
}

void uring_acceptor::arm() noexcept {
  if (armed_) return;
  io_uring_sqe* sqe = ctx_->get_sqe();
  if (multishot_) {
    io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(sqe, fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(sqe,
                          reinterpret_cast<std::uint64_t>(static_cast<cqe_handler*>(this)) | tag_handler);
  armed_ = true;
}

void uring_acceptor::on_cqe(int res, std::uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) armed_ = false;
  if (res >= 0) {
    accepted_once_ = true;
    if (retired_) {
      ::close(res);
    } else if (accept_op* op = std::exchange(waiter_, nullptr)) {
      deliver(*op, res);
      ctx_->complete_now(*op, res);
    } else {
      ready_.push_back(res);
    }
  } else if (res == -EINVAL && multishot_ && !accepted_once_) {
    multishot_ = false;  // the kernel has no multishot accept: one SQE per connection from now on
  } else if (accept_op* op = std::exchange(waiter_, nullptr)) {
    ctx_->complete_now(*op, res);  // EMFILE, ECANCELED, ...: the accept loop decides
  }
  if (retired_) {
    if (!armed_) ctx_->unbury(this);  // destroys this object
    return;
  }
  if (!armed_ && waiter_ && !cancelled_) arm();
}

void uring_acceptor::cancel() noexcept {
  cancelled_ = true;
  if (armed_) {
    // The waiter completes with the SQE's final CQE: once accept() has returned, the kernel holds no
    // request on the listening socket (else the port would stay taken after the process exits, until
    // the ring's asynchronous teardown ends).
    io_uring_sqe* sqe = ctx_->get_sqe();
    io_uring_prep_cancel64(sqe,
                           reinterpret_cast<std::uint64_t>(static_cast<cqe_handler*>(this)) | tag_handler, 0);
    io_uring_sqe_set_data64(sqe, 0);
    return;
  }
  if (accept_op* op = std::exchange(waiter_, nullptr)) ctx_->complete_now(*op, -ECANCELED);
}

void uring_acceptor::retire() noexcept {
  cancel();
  retired_ = true;
  if (!armed_) {
    delete this;
    return;
  }
  ctx_->bury({this, [](cqe_handler* h) { delete static_cast<uring_acceptor*>(h); }});
}

}  // namespace cproxy::io::uring
