// The Boost.Asio backend (epoll here; kqueue on macOS, IOCP on Windows: Asio chooses). Asio never runs a
// completion handler inside the initiating call, so resuming the waiter from a handler keeps the rule
// that starting an operation does not complete it inline. Internal to src/io/asio.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <vector>

#include "../buffer_pool.hpp"
#include "connect/io/backend.hpp"

namespace cproxy::io::asio_backend {

namespace net = boost::asio;

class asio_context;

// Objects whose operations cancel_all() must reach.
class cancellable {
 public:
  virtual void cancel() noexcept = 0;
  cancellable* prev = nullptr;
  cancellable* next = nullptr;

 protected:
  ~cancellable() = default;
};

class asio_context final : public context, public lease_owner {
 public:
  asio_context();
  ~asio_context() override;
  backend_kind kind() const noexcept override { return backend_kind::asio; }
  const capabilities& caps() const noexcept override { return caps_; }
  void run() override;
  void stop() noexcept override;
  void post(std::function<void()> fn) override;
  void cancel_all() noexcept override;
  std::unique_ptr<socket_impl> open_socket(int family, std::error_code& ec) override;
  std::unique_ptr<socket_impl> adopt_socket(native_handle_type fd) override;
  std::unique_ptr<acceptor_impl> adopt_acceptor(native_handle_type fd) override;
  std::unique_ptr<timer_impl> make_timer() override;

  net::io_context& io() noexcept { return io_; }
  bool closing() const noexcept { return closing_; }
  void fail_later(operation& op, int res);  // completes `op` from the loop, not inline
  static void finish(operation& op);        // one owed completion arrived

  void track(cancellable& c) noexcept;
  void untrack(cancellable& c) noexcept;

  static constexpr std::size_t buffer_size = 64 * 1024;
  std::byte* take_buffer() { return buffers_.take(); }
  void release_lease(std::uint32_t /*id*/, std::byte* data) noexcept override { buffers_.give_back(data); }

 private:
  net::io_context io_{1};
  capabilities caps_;
  bool closing_ = false;
  cancellable* tracked_ = nullptr;
  detail::buffer_pool buffers_{buffer_size, 64};
};

// Converts an Asio completion into a kernel-style result: a count, or a negated errno.
int to_res(const boost::system::error_code& ec, std::size_t n) noexcept;

}  // namespace cproxy::io::asio_backend
