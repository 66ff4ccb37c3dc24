// The Boost.Asio backend's socket, acceptor and timer. A timeout is a timer per direction whose expiry
// cancels just that operation through a per-operation cancellation slot (Asio >= 1.19).
#pragma once

#include "asio_backend.hpp"

namespace cproxy::io::asio_backend {

// One direction's timeout: the operation and its timer both owe a completion.
struct deadline {
  explicit deadline(net::io_context& io) : timer(io) {}
  net::steady_timer timer;
  net::cancellation_signal signal;
};

class asio_socket final : public socket_impl, private cancellable {
 public:
  asio_socket(asio_context* ctx, net::ip::tcp::socket sock);
  asio_socket(asio_context* ctx, native_handle_type fd);
  ~asio_socket() override;

  void start(recv_op& op) override;
  void start(recv_any_op& op) override;
  void start(send_op& op) override;
  void start(writev_op& op) override;
  void start(connect_op& op) override;
  coro::task<io_result> splice_to(socket_impl& to, std::size_t max, duration idle) override;
  coro::task<bool> quiet() override;
  void cancel() noexcept override;
  void shutdown_send() noexcept override;
  native_handle_type native_handle() const noexcept override;

 private:
  template <class Op, class Initiate>
  void launch(Op& op, deadline& d, Initiate&& initiate);

  asio_context* ctx_;
  net::ip::tcp::socket socket_;
  deadline read_;
  deadline write_;
  std::vector<net::const_buffer> gather_;  // the buffers of the writev in flight
};

class asio_acceptor final : public acceptor_impl, private cancellable {
 public:
  asio_acceptor(asio_context* ctx, native_handle_type fd);
  ~asio_acceptor() override;
  void start(accept_op& op) override;
  void cancel() noexcept override;

 private:
  asio_context* ctx_;
  net::ip::tcp::acceptor acceptor_;
  bool cancelled_ = false;
};

class asio_timer final : public timer_impl, private cancellable {
 public:
  explicit asio_timer(asio_context* ctx);
  ~asio_timer() override;
  void start(wait_op& op) override;
  void cancel() noexcept override;

 private:
  asio_context* ctx_;
  net::steady_timer timer_;
};

}  // namespace cproxy::io::asio_backend
