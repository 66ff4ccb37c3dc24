// Implementation of connect/io/worker_pool.hpp.
#include "connect/io/worker_pool.hpp"

#include <future>
#include <thread>

#include "connect/core/log.hpp"
#include "connect/coro/scope.hpp"
#include "connect/io/acceptor.hpp"
#include "connect/io/select_backend.hpp"
#include "connect/io/timer.hpp"

namespace cproxy::io {

struct worker::state {
  worker_pool::handler handler;
  std::unique_ptr<context> ctx;
  std::optional<acceptor> accept;
  std::optional<timer> grace_timer;
  std::optional<timer> backoff_timer;
  coro::scope connections;  // one task per accepted connection
  coro::scope accepting;    // the accept loop
  coro::scope control;      // the grace timer
  coro::scope closing;      // the shutdown sequence itself
  std::thread thread;
  capabilities caps;              // as probed when the context was made (splice may turn off later)
  io_counters counters;           // copied from ctx on the worker's thread once run() has returned
  bool stopping = false;          // no more accepting
  bool shutdown_started = false;  // stop() has begun the shutdown sequence
};

namespace {

using namespace std::chrono_literals;

coro::task<void> accept_loop(worker* w, worker::state* st) {
  bool complained = false;
  // Runs until accept() reports cancellation: connections accepted meanwhile are still served.
  for (;;) {
    accepted a = co_await st->accept->accept();
    if (!a.ec) {
      complained = false;
      st->connections.spawn(st->handler(std::move(a.peer), *w));
      continue;
    }
    if (is_cancelled(a.ec)) co_return;
    // Out of descriptors or memory: connections wait in the backlog; retry shortly, say so once.
    if (!complained) log::warn("worker ", w->index(), ": accept failed: ", a.ec.message(), "; retrying");
    complained = true;
    const std::error_code waited = co_await st->backoff_timer->wait(50ms);
    if (waited || st->stopping) co_return;
  }
}

coro::task<void> cancel_after(worker::state* st, duration grace) {
  const std::error_code ec = co_await st->grace_timer->wait(grace);
  if (!ec) st->ctx->cancel_all();  // the grace period ran out: end what is still running
}

coro::task<void> end_accepting(worker::state* st, std::shared_ptr<std::promise<void>> done) {
  st->stopping = true;
  st->accept->cancel();
  st->backoff_timer->cancel();
  co_await st->accepting.join();
  done->set_value();
}

coro::task<void> shutdown(worker::state* st, duration grace) {
  st->stopping = true;
  st->accept->cancel();
  st->backoff_timer->cancel();
  // Every connection the kernel handed us is spawned before anything is cancelled: one accepted in the
  // last moment is served, not cut (a --replace successor takes the ones still in the backlog).
  co_await st->accepting.join();
  if (grace.count() > 0 && st->connections.active() > 0) {
    st->control.spawn(cancel_after(st, grace));
    co_await st->connections.join();
    st->grace_timer->cancel();
  } else {
    st->ctx->cancel_all();
    co_await st->connections.join();
  }
  co_await st->control.join();
  st->ctx->stop();
}

}  // namespace

worker::worker(unsigned index) : index_(index) {}
worker::~worker() = default;

std::size_t worker::active_connections() const noexcept {
  return state_->connections.active();
}

worker_pool::worker_pool(const listen_socket& listener, options opts, handler h, on_start start_hook,
                         on_stop stop_hook)
    : kind_(opts.kind) {
  if (opts.threads == 0) opts.threads = 1;
  std::vector<std::future<void>> ready;
  for (unsigned i = 0; i < opts.threads; ++i) {
    auto w = std::unique_ptr<worker>(new worker(i));
    w->state_ = std::make_unique<worker::state>();
    w->state_->handler = h;
    std::error_code ec;
    const native_handle_type fd = listener.duplicate(ec);
    if (ec) throw std::system_error(ec, "dup of the listening socket");
    auto promise = std::make_shared<std::promise<void>>();
    ready.push_back(promise->get_future());
    worker* self = w.get();
    w->state_->thread = std::thread([self, fd, kind = opts.kind, promise, start_hook, stop_hook] {
      worker::state& st = *self->state_;
      try {
        st.ctx = make_context(kind);  // on this thread: the ring's single issuer
        self->ctx_ = st.ctx.get();
        st.caps = st.ctx->caps();
        st.accept.emplace(st.ctx->adopt_acceptor(fd));
        st.grace_timer.emplace(*st.ctx);
        st.backoff_timer.emplace(*st.ctx);
        if (start_hook) start_hook(*self);
      } catch (...) {
        promise->set_exception(std::current_exception());
        return;
      }
      st.accepting.spawn(accept_loop(self, &st));
      promise->set_value();
      st.ctx->run();
      if (stop_hook) stop_hook(*self);
      st.counters = st.ctx->counters();  // read here, on its own thread; stop() sums them after join
      // Every task has finished (shutdown joined them); release io objects on their own thread.
      st.accept.reset();
      st.grace_timer.reset();
      st.backoff_timer.reset();
      st.ctx.reset();
    });
    workers_.push_back(std::move(w));
  }
  std::exception_ptr failure;
  for (auto& f : ready) {
    try {
      f.get();
    } catch (...) {
      failure = std::current_exception();
    }
  }
  if (failure) {
    stop(duration{});
    std::rethrow_exception(failure);
  }
  started_ = true;
}

worker_pool::~worker_pool() {
  stop(duration{});
}

void worker_pool::stop_accepting() {
  std::vector<std::future<void>> done;
  for (auto& w : workers_) {
    worker::state& st = *w->state_;
    if (!st.ctx || !st.thread.joinable()) continue;
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    worker::state* stp = &st;
    st.ctx->post([stp, promise] { stp->closing.spawn(end_accepting(stp, promise)); });
  }
  for (auto& f : done) f.wait();
}

void worker_pool::post_to_each(const std::function<void(worker&)>& fn) {
  for (auto& w : workers_) {
    worker* self = w.get();
    if (w->state_->ctx && w->state_->thread.joinable()) w->state_->ctx->post([self, fn] { fn(*self); });
  }
}

void worker_pool::stop(duration grace) {
  for (auto& w : workers_) {
    worker::state& st = *w->state_;
    if (!st.thread.joinable()) continue;
    if (st.ctx) {
      worker::state* stp = &st;
      st.ctx->post([stp, grace] {
        if (stp->shutdown_started) return;
        stp->shutdown_started = true;
        stp->closing.spawn(shutdown(stp, grace));
      });
    }
  }
  bool joined = false;
  for (auto& w : workers_) {
    if (!w->state_->thread.joinable()) continue;
    w->state_->thread.join();
    joined = true;
  }
  if (!joined || !started_) return;  // stopped before (logged then), or never started
  // One line per process, for CI to see which data paths ran (tests/http assert on it). The workers'
  // contexts are alike: the first one's capabilities stand for all.
  const io_counters sum = counters();
  const capabilities& caps = workers_.front()->state_->caps;
  log::info("io (", to_string(kind_), "; splice ", caps.splice ? "yes" : "no", "; provided buffers ",
            caps.provided_buffers ? "yes" : "no", "): ", sum.splice_calls, " splices moved ",
            sum.spliced_bytes, " bytes, ", sum.copy_fallback_bytes, " bytes copied instead of spliced, ",
            sum.provided_buffer_recvs, " receives into provided buffers, ", sum.pooled_buffer_recvs,
            " into pooled buffers, ", sum.received_bytes, " bytes received into user space");
}

io_counters worker_pool::counters() const noexcept {
  io_counters sum;
  for (const auto& w : workers_) sum += w->state_->counters;
  return sum;
}

}  // namespace cproxy::io
