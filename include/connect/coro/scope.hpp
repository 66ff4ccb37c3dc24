// scope: the one place where coroutines are detached. It counts the tasks it started and lets an owner
// wait until all have finished, so that no frame outlives the objects it uses (sockets, the context).
// Single-threaded: a scope belongs to the thread of the context its tasks run on.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

#include "connect/coro/task.hpp"

namespace cproxy::coro {

class scope {
 public:
  scope() = default;
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;
  ~scope() { assert(active_ == 0 && "a scope must be joined before it is destroyed"); }

  // Starts `t` at once; it runs until its first suspension, then continues on its own.
  void spawn(task<void> t) {
    ++active_;
    run(this, std::move(t));
  }

  std::size_t active() const noexcept { return active_; }

  // co_await s.join(): resumes when every spawned task has finished (at once if none is running).
  auto join() noexcept {
    struct awaiter {
      scope* s;
      bool await_ready() const noexcept { return s->active_ == 0; }
      void await_suspend(std::coroutine_handle<> h) noexcept { s->joiner_ = h; }
      void await_resume() const noexcept {}
    };
    return awaiter{this};
  }

 private:
  struct detached {
    struct promise_type {
      detached get_return_object() noexcept { return {}; }
      std::suspend_never initial_suspend() const noexcept { return {}; }
      std::suspend_never final_suspend() const noexcept { return {}; }
      void return_void() noexcept {}
      // A task that lets an exception escape is a bug in this program: stop loudly.
      void unhandled_exception() noexcept { std::terminate(); }
      static void* operator new(std::size_t size) { return frame_allocator::allocate(size); }
      static void operator delete(void* p, std::size_t size) noexcept {
        frame_allocator::deallocate(p, size);
      }
    };
  };

  // Parameters are owned values (GCC 12: never references in a coroutine's parameters).
  static detached run(scope* owner, task<void> t) {
    co_await std::move(t);
    owner->finished();
  }

  void finished() noexcept {
    if (--active_ == 0 && joiner_) std::exchange(joiner_, {}).resume();
  }

  std::size_t active_ = 0;
  std::coroutine_handle<> joiner_{};
};

}  // namespace cproxy::coro
