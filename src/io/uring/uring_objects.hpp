// The io_uring backend's sockets, acceptors and timers. Each starts operations on its context's ring;
// none completes an operation inline.
#pragma once

#include <deque>

#include "uring_context.hpp"

namespace cproxy::io::uring {

class uring_socket final : public socket_impl {
 public:
  uring_socket(uring_context* ctx, int fd) noexcept : ctx_(ctx), fd_(fd) {}
  ~uring_socket() override;

  void start(recv_op& op) override;
  void start(recv_any_op& op) override;
  void start(send_op& op) override;
  void start(writev_op& op) override;
  void start(connect_op& op) override;
  coro::task<io_result> splice_to(socket_impl& to, std::size_t max, duration idle) override;
  coro::task<bool> quiet() override;
  void cancel() noexcept override;
  void shutdown_send() noexcept override;
  native_handle_type native_handle() const noexcept override { return fd_; }

 private:
  coro::task<io_result> splice_through_pipe(int to_fd, std::size_t max, duration idle);
  uring_context* ctx_;
  int fd_;
};

// The accepting side. Multishot accept keeps one SQE armed for many connections; connections that
// arrive while nobody awaits wait in `ready_`. The object outlives its handle until the kernel's last
// completion for it has arrived (the context keeps it buried till then).
class uring_acceptor final : public cqe_handler {
 public:
  uring_acceptor(uring_context* ctx, int fd) noexcept;
  ~uring_acceptor();
  void start(accept_op& op);
  void cancel() noexcept;
  // The handle is gone: cancel, and free this once no completion is owed.
  void retire() noexcept;

 private:
  void on_cqe(int res, std::uint32_t flags) override;
  void arm() noexcept;
  void deliver(accept_op& op, int fd);

  uring_context* ctx_;
  int fd_;
  std::deque<int> ready_;
  accept_op* waiter_ = nullptr;
  bool armed_ = false;
  bool multishot_ = true;
  bool accepted_once_ = false;
  bool cancelled_ = false;
  bool retired_ = false;
};

class uring_acceptor_handle final : public acceptor_impl {
 public:
  uring_acceptor_handle(uring_context* ctx, int fd) : acceptor_(new uring_acceptor(ctx, fd)) {}
  ~uring_acceptor_handle() override { acceptor_->retire(); }
  void start(accept_op& op) override { acceptor_->start(op); }
  void cancel() noexcept override { acceptor_->cancel(); }

 private:
  uring_acceptor* acceptor_;
};

class uring_timer final : public timer_impl {
 public:
  explicit uring_timer(uring_context* ctx) noexcept : ctx_(ctx) {}
  void start(wait_op& op) override;
  void cancel() noexcept override;

 private:
  static bool on_complete(operation& op);
  uring_context* ctx_;
  wait_op* current_ = nullptr;
};

}  // namespace cproxy::io::uring
