// acceptor: accepts connections from a listening socket on one context. Several workers each hold an
// acceptor over the same listening socket (a dup of it), so all of them take connections from one port.
#pragma once

#include <memory>
#include <system_error>

#include "connect/io/awaitable.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/socket.hpp"

namespace cproxy::io {

struct accepted {
  std::error_code ec;
  socket peer;
};

class acceptor {
 public:
  acceptor() noexcept = default;
  explicit acceptor(std::unique_ptr<acceptor_impl> impl) noexcept : impl_(std::move(impl)) {}

  auto accept() {
    struct awaitable : op_awaitable<acceptor_impl, accept_op> {
      accepted await_resume() {
        if (op.res < 0) return {op.error(), socket{}};
        return {{}, socket(std::move(op.accepted))};
      }
    };
    return awaitable{{impl_.get(), {}}};
  }

  // Stops accepting: a pending accept() completes with operation_canceled.
  void cancel() noexcept {
    if (impl_) impl_->cancel();
  }

 private:
  std::unique_ptr<acceptor_impl> impl_;
};

}  // namespace cproxy::io
