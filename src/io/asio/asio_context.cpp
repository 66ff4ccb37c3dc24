// asio_context: an io_context per worker thread, kept running by a work guard until stop().
#include "asio_context.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "../copy_relay.hpp"
#include "asio_backend.hpp"
#include "asio_objects.hpp"

namespace cproxy::io {

std::unique_ptr<context> make_asio_context() {
  return std::make_unique<asio_backend::asio_context>();
}

namespace asio_backend {

static_assert(asio_context::buffer_size <= detail::max_lease_size, "copy_some relies on the bound");

int to_res(const boost::system::error_code& ec, std::size_t n) noexcept {
  if (!ec) return static_cast<int>(n);
  if (ec == net::error::eof) return 0;
  if (ec == net::error::operation_aborted) return -ECANCELED;
  if (ec.category() == boost::system::system_category() || ec.category() == boost::system::generic_category())
    return -ec.value();
  return -EIO;
}

asio_context::asio_context() = default;

asio_context::~asio_context() = default;

void asio_context::run() {
  {
    auto guard = net::make_work_guard(io_);  // run() waits for completions even with none pending
    // A stop() that came before run() makes it return at once, as on the uring backend.
    io_.run();
  }  // the guard goes first: its release may stop the io_context, which restart() below undoes
  io_.restart();
}

void asio_context::stop() noexcept {
  io_.stop();
}

void asio_context::post(std::function<void()> fn) {
  net::post(io_, std::move(fn));
}

void asio_context::fail_later(operation& op, int res) {
  op.pending = 1;
  net::post(io_, [&op, res] {
    op.res = res;
    finish(op);
  });
}

void asio_context::finish(operation& op) {
  if (--op.pending != 0) return;
  if (op.on_complete && !op.on_complete(op)) return;
  op.waiter.resume();
}

void asio_context::track(cancellable& c) noexcept {
  c.prev = nullptr;
  c.next = tracked_;
  if (tracked_) tracked_->prev = &c;
  tracked_ = &c;
}

void asio_context::untrack(cancellable& c) noexcept {
  if (c.prev)
    c.prev->next = c.next;
  else
    tracked_ = c.next;
  if (c.next) c.next->prev = c.prev;
  c.prev = c.next = nullptr;
}

void asio_context::cancel_all() noexcept {
  closing_ = true;
  for (cancellable* c = tracked_; c; c = c->next) c->cancel();
}

std::unique_ptr<socket_impl> asio_context::open_socket(int family, std::error_code& ec) {
  boost::system::error_code bec;
  net::ip::tcp::socket sock(io_);
  sock.open(family == AF_INET6 ? net::ip::tcp::v6() : net::ip::tcp::v4(), bec);
  if (!bec) sock.non_blocking(true, bec);
  if (!bec) sock.set_option(net::ip::tcp::no_delay(true), bec);  // see tcp_options.hpp
  if (bec) {
    ec = bec;
    return nullptr;
  }
  ec.clear();
  return std::make_unique<asio_socket>(this, std::move(sock));
}

std::unique_ptr<socket_impl> asio_context::adopt_socket(native_handle_type fd) {
  return std::make_unique<asio_socket>(this, fd);
}

std::unique_ptr<acceptor_impl> asio_context::adopt_acceptor(native_handle_type fd) {
  return std::make_unique<asio_acceptor>(this, fd);
}

std::unique_ptr<timer_impl> asio_context::make_timer() {
  return std::make_unique<asio_timer>(this);
}

}  // namespace asio_backend
}  // namespace cproxy::io
