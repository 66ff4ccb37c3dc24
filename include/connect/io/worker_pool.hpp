// worker_pool: N threads, each with its own context, all accepting from ONE listening socket and
// running a handler coroutine per connection. Workers share nothing on the hot path. Stopping is
// orderly: stop accepting, give running connections a grace period, cancel the rest, join every frame.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "connect/coro/task.hpp"
#include "connect/io/backend.hpp"
#include "connect/io/listen_socket.hpp"
#include "connect/io/socket.hpp"

namespace cproxy::io {

class worker;

class worker_pool {
 public:
  // Runs once per accepted connection, on the accepting worker's thread.
  using handler = std::function<coro::task<void>(socket, worker&)>;
  // Run on each worker's thread: after its context exists, and after its last connection has ended
  // but before its context goes (per-worker state such as connection pools lives in between).
  using on_start = std::function<void(worker&)>;
  using on_stop = std::function<void(worker&)>;

  struct options {
    backend_kind kind = backend_kind::asio;
    unsigned threads = 1;
  };

  // Starts the threads; returns once every worker accepts. Throws std::system_error if one fails.
  worker_pool(const listen_socket& listener, options opts, handler h, on_start start_hook = {},
              on_stop stop_hook = {});
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Stops accepting; connections get `grace` to finish, then are cancelled. Returns when all threads
  // have exited. Idempotent.
  void stop(duration grace);
  // Stops accepting and returns once no worker has an accept in flight; connections already accepted
  // are spawned and keep running. Idempotent; stop() still follows.
  void stop_accepting();
  // Runs `fn` on every worker's thread (posted; returns at once). Used to start a drain.
  void post_to_each(const std::function<void(worker&)>& fn);
  // The sum of every worker's io_counters once stop() has returned (each read on its own thread at the
  // end of its run); stop() logs it. Zero before.
  io_counters counters() const noexcept;
  std::size_t size() const noexcept { return workers_.size(); }
  worker& at(std::size_t i) noexcept { return *workers_[i]; }

 private:
  backend_kind kind_;
  bool started_ = false;  // every worker came up: stop() logs the counters
  std::vector<std::unique_ptr<worker>> workers_;
};

class worker {
 public:
  ~worker();
  unsigned index() const noexcept { return index_; }
  context& ctx() noexcept { return *ctx_; }
  // Connections this worker is running now.
  std::size_t active_connections() const noexcept;

  struct state;  // defined in worker_pool.cpp

 private:
  friend class worker_pool;
  explicit worker(unsigned index);
  unsigned index_;
  context* ctx_ = nullptr;
  std::unique_ptr<state> state_;
};

}  // namespace cproxy::io
